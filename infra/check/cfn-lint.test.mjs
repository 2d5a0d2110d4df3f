// Tests for cfn-lint.sh, the cfn-lint step of `make test` (which lints the real template
// itself): an error, a warning and an informational finding each fail it; a rule ignored in
// the template's metadata passes it, and the project checker then wants that ignore's reason.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseTemplate, checkTemplate, formatFinding } from './check.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.join(here, 'cfn-lint.sh');
const TEXT = readFileSync(path.resolve(here, '../template.yaml'), 'utf8');

let dir;
before(() => { dir = mkdtempSync(path.join(tmpdir(), 'slackrelay-cfnlint-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes text as a template and runs cfn-lint.sh on it: { status, out }. */
function lint(name, text) {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out }));
  });
}

/** The template text with one replacement that must apply. */
function edited(from, to) {
  assert.ok(TEXT.includes(from), `template no longer contains ${JSON.stringify(from)}`);
  return TEXT.replace(from, to);
}

const UNUSED_PARAMETER = ['Parameters:\n', 'Parameters:\n  Unused:\n    Type: String\n    Default: x\n'];

describe('cfn-lint.sh', { concurrency: 2 }, () => {
  test('an error fails: a property the resource does not have', async () => {
    const r = await lint('error', edited('MessageRetentionPeriod: 345600', 'MessageRetentionPeriodSeconds: 345600'));
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /E3002 .*MessageRetentionPeriodSeconds/);
    assert.match(r.out, /each one fails the check/);
  });

  test('a warning fails: an unused parameter', async () => {
    const r = await lint('warning', edited(...UNUSED_PARAMETER));
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /W2001 Parameter Unused not used/);
  });

  test('an informational finding fails: a table without a deletion policy', async () => {
    const r = await lint('informational', edited(
      'Type: AWS::DynamoDB::Table\n    DeletionPolicy: Delete\n    UpdateReplacePolicy: Delete\n',
      'Type: AWS::DynamoDB::Table\n',
    ));
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /I3011 /);
  });

  test('a rule ignored in the metadata passes; the checker wants its reason', async () => {
    const ignore = 'Metadata:\n  cfn-lint:\n    config:\n      ignore_checks: [W2001]\n';
    const reason = '    ignore_reasons:\n      W2001: the parameter is read by a later release\n';
    const [from, to] = UNUSED_PARAMETER;
    const without = edited(from, `${ignore}\n${to}`);
    const withReason = edited(from, `${ignore}${reason}\n${to}`);

    const r = await lint('ignored', withReason);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /no findings/);
    assert.deepEqual(checkTemplate(parseTemplate(withReason)).map(formatFinding), []);

    const f = checkTemplate(parseTemplate(without));
    assert.ok(f.some((x) => x.rule === 'lint/ignore-reason' && x.message.includes('W2001')),
      `want lint/ignore-reason for W2001, got:\n${f.map(formatFinding).join('\n') || '(none)'}`);
  });
});
