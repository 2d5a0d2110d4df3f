// Tests for the project rules: the real template passes, and each rule catches a mutation of
// it (a failing template) with its own rule id, path and reason.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseTemplate, loadTemplate, loadEnvLists, checkTemplate, formatFinding, parseGoDuration } from './check.mjs';
import { resolveNumber, evaluate, parameterRefs, NO_VALUE } from './template.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const TEMPLATE = path.resolve(here, '../template.yaml');
const env = loadEnvLists();
const base = loadTemplate(TEMPLATE);

const check = (tpl) => checkTemplate(tpl, { env });

/** Applies mutate to a deep copy of the real template and returns the findings. */
function mutated(mutate) {
  const tpl = structuredClone(base);
  mutate(tpl);
  return check(tpl);
}

function assertFinding(findings, rule, pathPart, messagePart) {
  const hit = findings.find((f) => f.rule === rule
    && (pathPart === undefined || f.path.includes(pathPart))
    && (messagePart === undefined || f.message.includes(messagePart)));
  assert.ok(hit, `want ${rule} at ${pathPart ?? '*'} (${messagePart ?? '*'}), got:\n${findings.map(formatFinding).join('\n') || '(none)'}`);
}

const R = (tpl, id) => tpl.Resources[id].Properties;
const stmt = (tpl, role, sid) => R(tpl, role).Policies[0].PolicyDocument.Statement.find((s) => s.Sid === sid);
/** The path of a role's statement, as findings name it. */
const stmtPath = (role, sid) => `${role}.Properties.Policies[0].PolicyDocument.Statement[${R(base, role).Policies[0].PolicyDocument.Statement.findIndex((s) => s.Sid === sid)}]`;
const ssmArn = (p) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter\${${p}}` });
const CONTEXT_KEY = 'kms:EncryptionContext:PARAMETER_ARN';

describe('YAML short tags', () => {
  test('every short form becomes its long form', () => {
    const t = parseTemplate(`
a: !Ref X
b: !GetAtt Res.Attr.Nested
c: !GetAtt [Res, Arn]
d: !Sub "x-\${AWS::Region}"
e: !Sub ["\${v}", { v: !Ref Y }]
f: !Join ["", [a, !Ref B]]
g: !If [Cond, !Ref Z, !Ref AWS::NoValue]
h: !Equals [!Ref P, ""]
i: !Not [!Condition C]
j: !And [!Condition C, !Condition D]
k: !Or [!Condition C, !Condition D]
l: !Select [0, !GetAZs ""]
m: !Split [",", "a,b"]
n: !FindInMap [M, K1, K2]
o: !Base64 { "Fn::Sub": "hi" }
p: !Cidr [10.0.0.0/16, 4, 8]
q: !ImportValue shared-vpc
r: !Base64 plain
`);
    assert.deepEqual(t, {
      a: { Ref: 'X' },
      b: { 'Fn::GetAtt': ['Res', 'Attr.Nested'] },
      c: { 'Fn::GetAtt': ['Res', 'Arn'] },
      d: { 'Fn::Sub': 'x-${AWS::Region}' },
      e: { 'Fn::Sub': ['${v}', { v: { Ref: 'Y' } }] },
      f: { 'Fn::Join': ['', ['a', { Ref: 'B' }]] },
      g: { 'Fn::If': ['Cond', { Ref: 'Z' }, { Ref: 'AWS::NoValue' }] },
      h: { 'Fn::Equals': [{ Ref: 'P' }, ''] },
      i: { 'Fn::Not': [{ Condition: 'C' }] },
      j: { 'Fn::And': [{ Condition: 'C' }, { Condition: 'D' }] },
      k: { 'Fn::Or': [{ Condition: 'C' }, { Condition: 'D' }] },
      l: { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
      m: { 'Fn::Split': [',', 'a,b'] },
      n: { 'Fn::FindInMap': ['M', 'K1', 'K2'] },
      o: { 'Fn::Base64': { 'Fn::Sub': 'hi' } },
      p: { 'Fn::Cidr': ['10.0.0.0/16', 4, 8] },
      q: { 'Fn::ImportValue': 'shared-vpc' },
      r: { 'Fn::Base64': 'plain' },
    });
  });

  test('YAML errors are reported', () => {
    assert.throws(() => parseTemplate('a: [1, 2\n'), /template YAML/);
    assert.throws(() => parseTemplate('a: 1\na: 2\n'), /template YAML/);
  });
});

describe('real template', () => {
  test('has zero findings', () => {
    assert.deepEqual(check(base).map(formatFinding), []);
  });

  test('has the pieces the project relies on', () => {
    const r = base.Resources;
    assert.equal(r.ReceiverFunction.Properties.Runtime, 'provided.al2023');
    assert.deepEqual(r.ReceiverFunction.Properties.Architectures, ['arm64']);
    assert.deepEqual(r.WorkerFunction.Properties.Architectures, ['arm64']);
    assert.ok(!('Transform' in base), 'no SAM transform');
    const routes = Object.values(r).filter((x) => x.Type === 'AWS::ApiGatewayV2::Route').map((x) => x.Properties.RouteKey).sort();
    assert.deepEqual(routes, ['POST /slack/commands', 'POST /slack/events', 'POST /slack/interactivity']);
    const esm = r.WorkerEventSource.Properties;
    assert.equal(esm.BatchSize, 10);
    assert.deepEqual(esm.ScalingConfig, { MaximumConcurrency: { Ref: 'WorkerMaxConcurrency' } });
    assert.equal(r.EventsQueue.Properties.SqsManagedSseEnabled, true);
    assert.equal(r.DeadLetterQueue.Properties.SqsManagedSseEnabled, true);
    assert.equal(r.IdempotencyTable.Properties.TimeToLiveSpecification.AttributeName, 'expires_at');
    const alarms = Object.values(r).filter((x) => x.Type === 'AWS::CloudWatch::Alarm');
    assert.equal(alarms.length, 6);
    for (const a of alarms) assert.deepEqual(a.Properties.AlarmActions, [{ Ref: 'AlarmTopic' }]);
    for (const o of ['EventsUrl', 'CommandsUrl', 'InteractivityUrl', 'EventsQueueUrl', 'DeadLetterQueueUrl',
      'IdempotencyTableName', 'ReceiverFunctionName', 'WorkerFunctionName']) {
      assert.ok(base.Outputs[o], `output ${o}`);
    }
  });

  test('CLI exits 0 on the template and 1 on a broken one', () => {
    const ok = spawnSync(process.execPath, [path.join(here, 'cli.mjs'), TEMPLATE], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /0 findings/);
    const dir = mkdtempSync(path.join(tmpdir(), 'slackrelay-check-'));
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, readFileSync(TEMPLATE, 'utf8').replace('DeletionPolicy: Retain', 'DeletionPolicy: Delete'));
    const bad = spawnSync(process.execPath, [path.join(here, 'cli.mjs'), broken], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /rule\/retain-queue\s+Resources\.EventsQueue\.DeletionPolicy/);
  });
});

describe('queues', () => {
  test('redrive policy missing', () => {
    const f = mutated((t) => { delete R(t, 'EventsQueue').RedrivePolicy; });
    assertFinding(f, 'rule/redrive', 'EventsQueue.Properties.RedrivePolicy');
  });

  test('redrive policy to another queue', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').RedrivePolicy.deadLetterTargetArn = { 'Fn::GetAtt': ['EventsQueue', 'Arn'] }; });
    assertFinding(f, 'rule/redrive', 'deadLetterTargetArn', 'DeadLetterQueue.Arn');
  });

  test('MAX_RECEIVE_COUNT differs from maxReceiveCount', () => {
    const f = mutated((t) => { R(t, 'WorkerFunction').Environment.Variables.MAX_RECEIVE_COUNT = '3'; });
    assertFinding(f, 'rule/max-receive-count', 'MAX_RECEIVE_COUNT');
  });

  test('MaximumMessageSize left to the default, or smaller than 1 MiB', () => {
    const f = mutated((t) => {
      delete R(t, 'EventsQueue').MaximumMessageSize;
      R(t, 'DeadLetterQueue').MaximumMessageSize = 262144;
    });
    assertFinding(f, 'rule/max-message-size', 'EventsQueue.Properties.MaximumMessageSize', 'not set');
    assertFinding(f, 'rule/max-message-size', 'DeadLetterQueue.Properties.MaximumMessageSize', '262144');
  });

  test('a queue that a stack delete or replacement would destroy', () => {
    const f = mutated((t) => {
      t.Resources.EventsQueue.DeletionPolicy = 'Delete';
      delete t.Resources.DeadLetterQueue.UpdateReplacePolicy;
    });
    assertFinding(f, 'rule/retain-queue', 'EventsQueue.DeletionPolicy', '"Delete"');
    assertFinding(f, 'rule/retain-queue', 'DeadLetterQueue.UpdateReplacePolicy', 'not set');
    assert.equal(f.length, 2, f.map(formatFinding).join('\n'));
  });

  test('DLQ retention shorter than 14 days, or not longer than the events queue', () => {
    const f1 = mutated((t) => { R(t, 'DeadLetterQueue').MessageRetentionPeriod = 604800; });
    assertFinding(f1, 'rule/dlq-retention', 'DeadLetterQueue.Properties.MessageRetentionPeriod', 'want 1209600');
    const f2 = mutated((t) => { delete R(t, 'DeadLetterQueue').MessageRetentionPeriod; });
    assertFinding(f2, 'rule/dlq-retention', 'DeadLetterQueue', 'exceed the events queue\'s 345600');
    const f3 = mutated((t) => { R(t, 'EventsQueue').MessageRetentionPeriod = 1209600; });
    assertFinding(f3, 'rule/dlq-retention', 'DeadLetterQueue', 'exceed the events queue\'s 1209600');
  });
});

describe('worker event source', () => {
  const VIS = 'Mappings.WorkerTimeouts';

  test('the real template: 6 x each allowed worker timeout, from the mapping', () => {
    const p = base.Parameters.WorkerTimeoutSeconds;
    assert.deepEqual(p.AllowedValues, [30, 60, 120, 300, 600, 900]);
    assert.equal(p.Default, 120);
    const vis = base.Resources.EventsQueue.Properties.VisibilityTimeout;
    for (const value of p.AllowedValues) {
      assert.equal(evaluate(vis, base, { WorkerTimeoutSeconds: String(value) }), 6 * value, `WorkerTimeoutSeconds=${value}`);
    }
  });

  test('a mapping entry below 6 x its worker timeout', () => {
    const f = mutated((t) => { t.Mappings.WorkerTimeouts['600'].EventsQueueVisibilityTimeout = 3000; });
    assertFinding(f, 'rule/visibility-timeout', `${VIS}.600.EventsQueueVisibilityTimeout`,
      'VisibilityTimeout 3000 s < 6 x worker Timeout 600 s = 3600 s, with WorkerTimeoutSeconds=600');
    assert.equal(f.length, 1, f.map(formatFinding).join('\n'));
  });

  test('an allowed worker timeout missing from the mapping', () => {
    const f1 = mutated((t) => { t.Parameters.WorkerTimeoutSeconds.AllowedValues.push(450); });
    assertFinding(f1, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout', 'WorkerTimeoutSeconds=450: Mappings.WorkerTimeouts has no key "450"');
    const f2 = mutated((t) => { delete t.Mappings.WorkerTimeouts['30']; });
    assertFinding(f2, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout', 'has no key "30"');
    const f3 = mutated((t) => { t.Mappings.WorkerTimeouts['900'] = { VisibilityTimeout: 5400 }; });
    assertFinding(f3, 'rule/visibility-timeout', 'EventsQueue', 'Mappings.WorkerTimeouts.900 has no key "EventsQueueVisibilityTimeout"');
  });

  test('a literal visibility timeout too small for the larger allowed timeouts', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').VisibilityTimeout = 720; });
    for (const [timeout, want] of [[300, 1800], [600, 3600], [900, 5400]]) {
      assertFinding(f, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout',
        `VisibilityTimeout 720 s < 6 x worker Timeout ${timeout} s = ${want} s, with WorkerTimeoutSeconds=${timeout}`);
    }
    assert.equal(f.length, 3, f.map(formatFinding).join('\n'));
  });

  test('a literal worker timeout and visibility timeout', () => {
    const f = mutated((t) => {
      R(t, 'WorkerFunction').Timeout = 200;
      R(t, 'EventsQueue').VisibilityTimeout = 1000;
    });
    assertFinding(f, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout', 'VisibilityTimeout 1000 s < 6 x worker Timeout 200 s = 1200 s');
  });

  test('a worker timeout parameter with a range: its MaxValue counts, and without one it cannot be bounded', () => {
    const range = (t, max) => {
      const p = t.Parameters.WorkerTimeoutSeconds;
      delete p.AllowedValues;
      Object.assign(p, { MinValue: 10 }, max === undefined ? {} : { MaxValue: max });
      R(t, 'EventsQueue').VisibilityTimeout = 720;
    };
    assert.deepEqual(mutated((t) => range(t, 120)).map(formatFinding), []);
    assertFinding(mutated((t) => range(t, 900)), 'rule/visibility-timeout', 'EventsQueue',
      'worker Timeout 900 s (parameter WorkerTimeoutSeconds MaxValue) = 5400 s');
    assertFinding(mutated((t) => range(t)), 'rule/visibility-timeout', 'WorkerFunction.Properties.Timeout', 'MaxValue');
  });

  test('a mapping looked up by a parameter without AllowedValues', () => {
    const f = mutated((t) => {
      const p = t.Parameters.WorkerTimeoutSeconds;
      delete p.AllowedValues;
      Object.assign(p, { MinValue: 30, MaxValue: 900 });
    });
    assertFinding(f, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout', 'parameter WorkerTimeoutSeconds, which has no AllowedValues');
  });

  test('a batching window is added to every entry', () => {
    const f = mutated((t) => { R(t, 'WorkerEventSource').MaximumBatchingWindowInSeconds = 5; });
    assertFinding(f, 'rule/visibility-timeout', `${VIS}.120.EventsQueueVisibilityTimeout`, 'batching window 5 s = 725 s');
    assert.equal(f.length, 6, f.map(formatFinding).join('\n'));
  });

  test('no ReportBatchItemFailures', () => {
    const f = mutated((t) => { delete R(t, 'WorkerEventSource').FunctionResponseTypes; });
    assertFinding(f, 'rule/report-batch-item-failures', 'WorkerEventSource.Properties.FunctionResponseTypes');
  });

  test('no event source mapping for the worker, or one from another queue', () => {
    const f1 = mutated((t) => { delete t.Resources.WorkerEventSource; });
    assertFinding(f1, 'rule/event-source', 'Resources');
    const f2 = mutated((t) => { R(t, 'WorkerEventSource').EventSourceArn = { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }; });
    assertFinding(f2, 'rule/event-source', 'WorkerEventSource.Properties.EventSourceArn', 'EventsQueue.Arn');
  });
});

describe('record retention', () => {
  const V = (name) => `WorkerFunction.Properties.Environment.Variables.${name}`;
  const setEnv = (t, vars) => Object.assign(R(t, 'WorkerFunction').Environment.Variables, vars);

  test('DLQ_RETENTION differs from the DLQ\'s MessageRetentionPeriod', () => {
    const f1 = mutated((t) => setEnv(t, { DLQ_RETENTION: '168h', IDEMPOTENCY_TTL: '192h' }));
    assertFinding(f1, 'rule/record-retention', V('DLQ_RETENTION'),
      'DLQ_RETENTION 168h (604800 s = 168h) differs from Resources.DeadLetterQueue.Properties.MessageRetentionPeriod 1209600 s = 336h');
    assert.equal(f1.length, 1, f1.map(formatFinding).join('\n'));
    const f2 = mutated((t) => { R(t, 'DeadLetterQueue').MessageRetentionPeriod = 604800; });
    assertFinding(f2, 'rule/record-retention', V('DLQ_RETENTION'), 'DLQ_RETENTION 336h (1209600 s = 336h) differs from Resources.DeadLetterQueue.Properties.MessageRetentionPeriod 604800 s');
  });

  test('the same duration written otherwise passes', () => {
    const f = mutated((t) => setEnv(t, { DLQ_RETENTION: '1209600s', REPLAY_WINDOW: '1440m', IDEMPOTENCY_TTL: '359h60m' }));
    assert.deepEqual(f.map(formatFinding), []);
  });

  test('IDEMPOTENCY_TTL shorter than DLQ_RETENTION + REPLAY_WINDOW', () => {
    const f1 = mutated((t) => setEnv(t, { IDEMPOTENCY_TTL: '336h' }));
    assertFinding(f1, 'rule/record-retention', V('IDEMPOTENCY_TTL'),
      'IDEMPOTENCY_TTL 336h (1209600 s = 336h) < DLQ_RETENTION 336h + REPLAY_WINDOW 24h (1296000 s = 360h)');
    const f2 = mutated((t) => setEnv(t, { REPLAY_WINDOW: '24h1s' }));
    assertFinding(f2, 'rule/record-retention', V('IDEMPOTENCY_TTL'), '(1296001 s)');
  });

  test('a duration that is not Go syntax, or not written out', () => {
    const f = mutated((t) => setEnv(t, { DLQ_RETENTION: '14d', REPLAY_WINDOW: '24', IDEMPOTENCY_TTL: { Ref: 'Stage' } }));
    assertFinding(f, 'rule/record-retention', V('DLQ_RETENTION'), '"14d" is not a Go duration: unknown unit "d"');
    assertFinding(f, 'rule/record-retention', V('REPLAY_WINDOW'), '"24" is not a Go duration: missing unit');
    assertFinding(f, 'rule/record-retention', V('IDEMPOTENCY_TTL'), 'IDEMPOTENCY_TTL is {"Ref":"Stage"}, want a Go duration');
    const g = mutated((t) => { delete R(t, 'WorkerFunction').Environment.Variables.REPLAY_WINDOW; });
    assertFinding(g, 'rule/record-retention', V('REPLAY_WINDOW'), 'REPLAY_WINDOW is not set');
  });

  test('parseGoDuration reads what time.ParseDuration reads', () => {
    const h = 3600n * 1000000000n;
    for (const [text, want] of [['336h', 336n * h], ['1h30m', 90n * 60n * 1000000000n], ['1.5h', 3n * h / 2n], ['-2m', -120000000000n],
      ['+5s', 5000000000n], ['.5s', 500000000n], ['0', 0n], ['300ms', 300000000n], ['1us', 1000n], ['1µs', 1000n], ['1h0m0s', h]]) {
      assert.equal(parseGoDuration(text), want, text);
    }
    for (const [text, err] of [['14d', /unknown unit "d"/], ['', /empty/], ['5', /missing unit/], ['h', /cannot read/],
      ['1.2.3h', /missing unit/], ['5 s', /unknown unit/], ['5toString', /unknown unit/], ['2562048h', /out of range/]]) {
      assert.throws(() => parseGoDuration(text), err, JSON.stringify(text));
    }
  });
});

describe('receiver reserved concurrency', () => {
  const where = 'ReceiverFunction.Properties.ReservedConcurrentExecutions';

  test('the real template: unreserved by default, the parameter when set', () => {
    const v = base.Resources.ReceiverFunction.Properties.ReservedConcurrentExecutions;
    for (const [value, want] of [['', NO_VALUE], ['0', NO_VALUE], ['50', '50']]) {
      assert.equal(evaluate(v, base, { ReceiverReservedConcurrency: value }), want, `ReceiverReservedConcurrency=${JSON.stringify(value)}`);
    }
  });

  test('no reserved concurrency parameter', () => {
    const f = mutated((t) => { delete R(t, 'ReceiverFunction').ReservedConcurrentExecutions; });
    assertFinding(f, 'rule/receiver-concurrency', where, 'got nothing');
  });

  test('the parameter without the condition reserves "" or 0', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').ReservedConcurrentExecutions = { Ref: 'ReceiverReservedConcurrency' }; });
    assertFinding(f, 'rule/receiver-concurrency', where, 'at its default ""');
    assertFinding(f, 'rule/receiver-concurrency', where, 'ReceiverReservedConcurrency="0" gives ReservedConcurrentExecutions "0"');
  });

  test('a condition that lets 0 through', () => {
    const f = mutated((t) => { t.Conditions.HasReceiverReservedConcurrency = { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ReceiverReservedConcurrency' }, ''] }] }; });
    assertFinding(f, 'rule/receiver-concurrency', where, '"0" gives ReservedConcurrentExecutions "0"');
  });

  test('a pattern that admits a zero the condition does not see', () => {
    const f = mutated((t) => { t.Parameters.ReceiverReservedConcurrency.AllowedPattern = '^[0-9]*$'; });
    assertFinding(f, 'rule/receiver-concurrency', where, '"00" gives ReservedConcurrentExecutions "00"');
  });

  test('reserved by default', () => {
    const f = mutated((t) => { t.Parameters.ReceiverReservedConcurrency.Default = '20'; });
    assertFinding(f, 'rule/receiver-concurrency', where, 'at its default "20"');
  });
});

describe('IAM', () => {
  test('wildcard action', () => {
    const f = mutated((t) => {
      stmt(t, 'WorkerRole', 'ConsumeEvents').Action = 'sqs:*';
      stmt(t, 'ReceiverRole', 'Enqueue').Action = ['*'];
    });
    assertFinding(f, 'iam/wildcard-action', 'WorkerRole.Properties.Policies[0].PolicyDocument.Statement[1]', 'sqs:*');
    assertFinding(f, 'iam/wildcard-action', 'ReceiverRole.Properties.Policies[0].PolicyDocument.Statement[1]');
  });

  test('wildcard resource outside the allowlist, and NotAction', () => {
    const f = mutated((t) => {
      stmt(t, 'WorkerRole', 'Idempotency').Resource = '*';
      const s = stmt(t, 'WorkerRole', 'DeadLetter');
      s.NotAction = s.Action;
      delete s.Action;
    });
    assertFinding(f, 'iam/wildcard-resource', 'WorkerRole', 'dynamodb:GetItem');
    assertFinding(f, 'iam/not-action', 'WorkerRole.Properties.Policies[0].PolicyDocument.Statement[2]');
  });

  test('wildcards in a standalone AWS::IAM::Policy are caught too', () => {
    const f = mutated((t) => {
      t.Resources.ExtraPolicy = {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'extra',
          Roles: [{ Ref: 'WorkerRole' }],
          PolicyDocument: { Version: '2012-10-17', Statement: { Effect: 'Allow', Action: 's3:GetObject', Resource: '*' } },
        },
      };
    });
    assertFinding(f, 'iam/wildcard-resource', 'ExtraPolicy', 's3:GetObject');
  });

  test('kms:Decrypt on "*" with only kms:ViaService (any SecureString through SSM)', () => {
    const f = mutated((t) => { delete stmt(t, 'ReceiverRole', 'DecryptSigningSecret').Condition.StringEquals[CONTEXT_KEY]; });
    assertFinding(f, 'iam/wildcard-resource', 'ReceiverRole', CONTEXT_KEY);
    assertFinding(f, 'iam/kms-decrypt', 'ReceiverRole', 'without a kms:EncryptionContext:PARAMETER_ARN condition');
  });

  test('kms:Decrypt on a key ARN still needs the parameter condition', () => {
    const f = mutated((t) => {
      const s = stmt(t, 'WorkerRole', 'DecryptSecrets');
      s.Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/1234abcd-12ab-34cd-56ef-1234567890ab' };
      delete s.Condition;
    });
    assertFinding(f, 'iam/kms-decrypt', stmtPath('WorkerRole', 'DecryptSecrets'), 'decrypts more than WorkerFunction');
  });

  test('kms:Decrypt for a parameter the function does not read, or missing one it reads', () => {
    const f = mutated((t) => {
      stmt(t, 'ReceiverRole', 'DecryptSigningSecret').Condition.StringEquals[CONTEXT_KEY] = [ssmArn('SigningSecretParam'), ssmArn('BotTokenParam')];
      stmt(t, 'WorkerRole', 'DecryptSecrets').Condition.StringEquals[CONTEXT_KEY] = [ssmArn('BotTokenParam')];
    });
    assertFinding(f, 'iam/kms-decrypt', 'ReceiverRole', 'grants param:BotTokenParam');
    assertFinding(f, 'iam/kms-decrypt', 'WorkerRole', 'lacks param:LlmApiKeyParam?HasLlm');
  });

  test('the LLM key granted whether or not an LLM is configured', () => {
    const f = mutated((t) => { stmt(t, 'WorkerRole', 'Secrets').Resource = [ssmArn('BotTokenParam'), ssmArn('LlmApiKeyParam')]; });
    assertFinding(f, 'iam/ssm-read', 'WorkerRole', 'grants param:LlmApiKeyParam,');
    assertFinding(f, 'iam/ssm-read', 'WorkerRole', 'lacks param:LlmApiKeyParam?HasLlm');
  });

  test('a wildcard in the encryption context or the parameter ARN', () => {
    const f = mutated((t) => {
      stmt(t, 'WorkerRole', 'DecryptSecrets').Condition = {
        StringLike: { [CONTEXT_KEY]: { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/slackrelay/*' } },
      };
      stmt(t, 'ReceiverRole', 'SigningSecret').Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/slackrelay/*' };
    });
    assertFinding(f, 'iam/kms-decrypt', 'WorkerRole', 'under StringLike, want StringEquals');
    assertFinding(f, 'iam/kms-decrypt', 'WorkerRole', 'want the exact ARN');
    assertFinding(f, 'iam/ssm-read', 'ReceiverRole', 'want the exact ARN');
  });

  test('the worker sends to the events queue (continuations) and the DLQ; the receiver to the events queue', () => {
    const sends = (role) => R(base, role).Policies[0].PolicyDocument.Statement
      .filter((s) => [].concat(s.Action).includes('sqs:SendMessage')).flatMap((s) => [].concat(s.Resource));
    assert.deepEqual(sends('WorkerRole'), [{ 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }, { 'Fn::GetAtt': ['EventsQueue', 'Arn'] }]);
    assert.deepEqual(sends('ReceiverRole'), [{ 'Fn::GetAtt': ['EventsQueue', 'Arn'] }]);
  });

  test('sqs:SendMessage on "*"', () => {
    const f = mutated((t) => { stmt(t, 'WorkerRole', 'Continue').Resource = '*'; });
    assertFinding(f, 'iam/wildcard-resource', stmtPath('WorkerRole', 'Continue'), 'sqs:SendMessage');
    assertFinding(f, 'iam/sqs-send', stmtPath('WorkerRole', 'Continue'),
      'WorkerRole\'s sqs:SendMessage on "*": WorkerFunction may send only to the queues its environment names (EventsQueue, DeadLetterQueue)');
  });

  test('sqs:SendMessage on a queue the function does not name', () => {
    const f = mutated((t) => {
      t.Resources.OtherQueue = structuredClone(t.Resources.DeadLetterQueue);
      R(t, 'OtherQueue').QueueName = { 'Fn::Sub': '${AWS::StackName}-other' };
      stmt(t, 'WorkerRole', 'Continue').Resource = { 'Fn::GetAtt': ['OtherQueue', 'Arn'] };
      stmt(t, 'ReceiverRole', 'Enqueue').Resource = [{ 'Fn::GetAtt': ['EventsQueue', 'Arn'] }, { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }];
    });
    assertFinding(f, 'iam/sqs-send', stmtPath('WorkerRole', 'Continue'), 'on {"Fn::GetAtt":["OtherQueue","Arn"]}');
    assertFinding(f, 'iam/sqs-send', stmtPath('ReceiverRole', 'Enqueue'), 'on {"Fn::GetAtt":["DeadLetterQueue","Arn"]}: ReceiverFunction may send only to the queues its environment names (EventsQueue)');
    assert.equal(f.filter((x) => x.rule === 'iam/sqs-send').length, 2, f.map(formatFinding).join('\n'));
  });

  test('sqs:SendMessage through an action pattern, or on an ARN written out', () => {
    const f = mutated((t) => {
      const s = stmt(t, 'WorkerRole', 'ConsumeEvents');
      s.Action = [...s.Action, 'sqs:Send*'];
      s.Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*' };
    });
    assertFinding(f, 'iam/sqs-send', stmtPath('WorkerRole', 'ConsumeEvents'), 'sqs:Send* on {"Fn::Sub"');
  });

  test('a *_PARAM variable whose parameter cannot be told', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Environment.Variables.SIGNING_SECRET_PARAM = { 'Fn::Join': ['', ['/x/', { Ref: 'Stage' }]] }; });
    assertFinding(f, 'iam/ssm-read', 'SIGNING_SECRET_PARAM', 'cannot tell which SSM parameter');
  });
});

describe('Lambda environment', () => {
  test('missing environment variable', () => {
    const f = mutated((t) => { delete R(t, 'WorkerFunction').Environment.Variables.BACKOFF_MAX; });
    assertFinding(f, 'env/missing', 'WorkerFunction', 'BACKOFF_MAX');
  });

  test('extra environment variable', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Environment.Variables.SLACK_SIGNING_SECRET = 'oops'; });
    assertFinding(f, 'env/extra', 'ReceiverFunction', 'SLACK_SIGNING_SECRET');
  });

  test('env lists come from the Go golden files', () => {
    assert.ok(Array.isArray(env.ReceiverFunction), 'receiver/testdata/lambda-env.json');
    assert.ok(Array.isArray(env.WorkerFunction), 'worker/testdata/lambda-env.json');
    const f = checkTemplate(base, { env: { ReceiverFunction: [...env.ReceiverFunction, 'NEW_VAR'], WorkerFunction: env.WorkerFunction } });
    assertFinding(f, 'env/missing', 'ReceiverFunction', 'NEW_VAR');
    const g = checkTemplate(base, { env: loadEnvLists(tmpdir()) });
    assertFinding(g, 'env/golden-missing', 'ReceiverFunction', 'lambda-env.json');
  });
});

describe('cfn-lint ignores', () => {
  test('an ignored rule needs a reason, and a reason needs an ignored rule', () => {
    const f = mutated((t) => {
      t.Metadata = { 'cfn-lint': { config: { ignore_checks: ['W2001'] } } };
      t.Resources.AlarmTopic.Metadata = { 'cfn-lint': { config: { ignore_checks: ['I3011'] }, ignore_reasons: { I3011: ' ', W3005: 'old' } } };
    });
    assertFinding(f, 'lint/ignore-reason', 'Metadata.cfn-lint.config.ignore_checks', 'W2001');
    assertFinding(f, 'lint/ignore-reason', 'Resources.AlarmTopic.Metadata.cfn-lint.config.ignore_checks', 'I3011');
    assertFinding(f, 'lint/ignore-reason', 'Resources.AlarmTopic.Metadata.cfn-lint.ignore_reasons.W3005', 'not ignored');
  });

  test('an ignored rule with its reason passes', () => {
    const f = mutated((t) => {
      t.Metadata = { 'cfn-lint': { config: { ignore_checks: ['W2001'] }, ignore_reasons: { W2001: 'kept for the next release' } } };
    });
    assert.deepEqual(f.map(formatFinding), []);
  });
});

describe('template evaluation', () => {
  const params = { P: { Type: 'Number', Default: 5, MinValue: 1, MaxValue: 9 }, Q: { Type: 'Number', AllowedValues: ['2', '4'] } };
  test('resolveNumber: literals, bounds and allowed values', () => {
    assert.equal(resolveNumber(7, params, 'max').value, 7);
    assert.equal(resolveNumber('7', params, 'min').value, 7);
    assert.equal(resolveNumber({ Ref: 'P' }, params, 'max').value, 9);
    assert.equal(resolveNumber({ Ref: 'P' }, params, 'min').value, 1);
    assert.equal(resolveNumber({ Ref: 'Q' }, params, 'max').value, 4);
    assert.equal(resolveNumber({ Ref: 'Q' }, params, 'min').value, 2);
    assert.equal(resolveNumber({ 'Fn::Sub': 'x' }, params, 'min').value, undefined);
  });

  test('evaluate: Fn::If through And, Or, Not, Equals and Condition', () => {
    const tpl = {
      Conditions: {
        A: { 'Fn::Equals': [{ Ref: 'X' }, 'a'] },
        B: { 'Fn::And': [{ Condition: 'A' }, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'Y' }, ''] }] }] },
        C: { 'Fn::Or': [{ Condition: 'B' }, { 'Fn::Equals': [{ Ref: 'Y' }, 'z'] }] },
      },
    };
    const v = { 'Fn::If': ['C', { Ref: 'Y' }, { Ref: 'AWS::NoValue' }] };
    for (const [x, y, want] of [['a', 'y', 'y'], ['a', '', NO_VALUE], ['b', 'z', 'z'], ['b', 'y', NO_VALUE]]) {
      assert.equal(evaluate(v, tpl, { X: x, Y: y }), want, `X=${x} Y=${y}`);
    }
    assert.throws(() => evaluate({ 'Fn::If': ['Nope', 1, 2] }, tpl, {}), /unknown condition Nope/);
    assert.throws(() => evaluate({ Ref: 'Z' }, tpl, {}), /no value for Z/);
  });

  test('evaluate: Fn::FindInMap, with the entries it reads', () => {
    const tpl = { Mappings: { M: { a: { k: 1, l: [2, 3] }, 4: { k: 'four' } } } };
    const lookups = [];
    assert.equal(evaluate({ 'Fn::FindInMap': ['M', { Ref: 'X' }, 'k'] }, tpl, { X: 'a' }, lookups), 1);
    assert.equal(evaluate({ 'Fn::FindInMap': ['M', 4, 'k'] }, tpl, {}, lookups), 'four');
    assert.deepEqual(evaluate({ 'Fn::FindInMap': ['M', 'a', 'l'] }, tpl, {}), [2, 3]);
    assert.deepEqual(lookups, ['Mappings.M.a.k', 'Mappings.M.4.k']);
    assert.throws(() => evaluate({ 'Fn::FindInMap': ['N', 'a', 'k'] }, tpl, {}), /no mapping Mappings.N/);
    assert.throws(() => evaluate({ 'Fn::FindInMap': ['M', 'b', 'k'] }, tpl, {}), /Mappings.M has no key "b"/);
    assert.throws(() => evaluate({ 'Fn::FindInMap': ['M', 'a', 'z'] }, tpl, {}), /Mappings.M.a has no key "z"/);
    assert.throws(() => evaluate({ 'Fn::FindInMap': ['M', 'a'] }, tpl, {}), /takes \[map, key, key\]/);
    assert.throws(() => evaluate({ 'Fn::FindInMap': ['M', ['a'], 'k'] }, tpl, {}), /cannot evaluate/);
  });

  test('parameterRefs: the parameters a value refers to, anywhere inside it', () => {
    const v = { 'Fn::If': ['C', { 'Fn::FindInMap': ['M', { Ref: 'P' }, 'k'] }, { Ref: 'Q' }], x: { Ref: 'AWS::Region' } };
    assert.deepEqual([...parameterRefs(v, params)].sort(), ['P', 'Q']);
  });
});
