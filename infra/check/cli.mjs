#!/usr/bin/env node
// Usage: node infra/check/cli.mjs [infra/template.yaml] [--json]
// Prints one line per finding and exits 1 when there are any (2 on a usage/parse error).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTemplate, checkTemplate, formatFinding } from './check.mjs';

const args = process.argv.slice(2);
const json = args.includes('--json');
const files = args.filter((a) => !a.startsWith('--'));
if (args.includes('--help') || files.length > 1) {
  console.error('usage: node cli.mjs [template.yaml] [--json]');
  process.exit(2);
}
const file = files[0] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../template.yaml');

let findings;
try {
  findings = checkTemplate(loadTemplate(file));
} catch (err) {
  console.error(`${file}: ${err.message}`);
  process.exit(2);
}
if (json) {
  console.log(JSON.stringify(findings, null, 2));
} else {
  for (const f of findings) console.log(formatFinding(f));
  console.log(`${file}: ${findings.length} finding${findings.length === 1 ? '' : 's'}`);
}
process.exit(findings.length ? 1 : 0);
