#!/usr/bin/env node
// Local SQS-protocol server for slackrelay (fauxqs by default; local-aws-sqs with
// --impl local-aws-sqs, which also has StartMessageMoveTask for the DLQ redrive tests).
//   node sqs-server.mjs [--port 0] [--queue events] [--max-receive-count 5] [--impl fauxqs] [--fair-queues on]
// fauxqs's standard queues behave as SQS fair queues (fair-queues.mjs) unless --fair-queues off.
// With --queue NAME it creates NAME-dlq and NAME with a RedrivePolicy to it before it
// reports ready: {"ready":true,"endpoint":...,"queue_url":...,"dlq_url":...}.
import net from "node:net";
import { parseArgs, ready, stopOn, fail } from "./launch-util.mjs";
import { installFairQueues } from "./fair-queues.mjs";

const opts = (() => {
  try {
    return parseArgs(process.argv.slice(2), { port: 0, queue: "", "max-receive-count": 5, "visibility-timeout": 30, impl: "fauxqs", "fair-queues": "on" });
  } catch (err) { fail(err); }
})();

// fauxqs listens on 0.0.0.0; slackrelay's servers bind loopback only.
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && "port" in args[0]) args[0] = { ...args[0], host: "127.0.0.1" };
  else if (typeof args[0] === "number") {
    const cb = typeof args.at(-1) === "function" ? args.at(-1) : undefined;
    args = cb ? [args[0], "127.0.0.1", cb] : [args[0], "127.0.0.1"];
  }
  return listen.apply(this, args);
};

const accountId = "000000000000";
const region = process.env.AWS_REGION || "us-east-1";

async function startFauxqsImpl() {
  if (!["on", "off"].includes(opts["fair-queues"])) throw new Error("--fair-queues must be on or off");
  if (opts["fair-queues"] === "on") await installFairQueues();
  const { startFauxqs } = await import("fauxqs");
  const server = await startFauxqs({ port: opts.port, logger: false, defaultRegion: region });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const queues = {};
  if (opts.queue) {
    const dlq = server.createQueue(`${opts.queue}-dlq`, { attributes: { MessageRetentionPeriod: "1209600" } });
    const main = server.createQueue(opts.queue, {
      attributes: {
        VisibilityTimeout: String(opts["visibility-timeout"]),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: opts["max-receive-count"] }),
      },
    });
    queues.queue_url = main.queueUrl;
    queues.dlq_url = dlq.queueUrl;
  }
  return { endpoint, queues, close: () => server.stop() };
}

async function startLocalAwsSqsImpl() {
  const mod = await import("local-aws-sqs");
  const createSqsServer = mod.createSqsServer ?? mod.default?.createSqsServer;
  const server = await createSqsServer({ port: opts.port, hostname: "127.0.0.1", region, accountId, emulateQueueCreationLifecycle: false });
  const endpoint = `http://127.0.0.1:${server.address().port}`;
  const queues = {};
  if (opts.queue) {
    const call = async (action, body) => {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${action}` },
        body: JSON.stringify(body),
      });
      const out = await res.json();
      if (!res.ok) throw new Error(`${action}: ${JSON.stringify(out)}`);
      return out;
    };
    const dlq = await call("CreateQueue", { QueueName: `${opts.queue}-dlq`, Attributes: { MessageRetentionPeriod: "1209600" } });
    const dlqArn = `arn:aws:sqs:${region}:${accountId}:${opts.queue}-dlq`;
    const main = await call("CreateQueue", {
      QueueName: opts.queue,
      Attributes: {
        VisibilityTimeout: String(opts["visibility-timeout"]),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts["max-receive-count"] }),
      },
    });
    queues.queue_url = main.QueueUrl;
    queues.dlq_url = dlq.QueueUrl;
  }
  return { endpoint, queues, close: () => new Promise((r) => server.close(r)) };
}

try {
  const impls = { fauxqs: startFauxqsImpl, "local-aws-sqs": startLocalAwsSqsImpl };
  if (!impls[opts.impl]) throw new Error(`--impl must be one of ${Object.keys(impls).join(", ")}`);
  const s = await impls[opts.impl]();
  stopOn(s.close);
  ready({ endpoint: s.endpoint, impl: opts.impl, fair_queues: opts.impl === "fauxqs" && opts["fair-queues"] === "on", ...s.queues });
} catch (err) {
  fail(err);
}
