#!/usr/bin/env node
// Local DynamoDB-protocol server for slackrelay (dynalite, in memory), bound to 127.0.0.1.
//   node dynamodb-server.mjs [--port 0]
// Prints {"ready":true,"endpoint":"http://127.0.0.1:N"} when it accepts requests. The table
// itself is created by the Go side (infra/local/localaws) or by `make dev`, through the same
// CreateTable call a deployment's template describes.
import { createRequire } from "node:module";
import { parseArgs, ready, stopOn, fail } from "./launch-util.mjs";

const require = createRequire(import.meta.url);
let opts;
try {
  opts = parseArgs(process.argv.slice(2), { port: 0 });
} catch (err) { fail(err); }

const dynalite = require("dynalite");
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.on("error", fail);
server.listen(opts.port, "127.0.0.1", () => {
  stopOn(() => new Promise((r) => server.close(() => r())));
  ready({ endpoint: `http://127.0.0.1:${server.address().port}` });
});
