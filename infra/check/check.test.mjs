// Tests for the template checker: the real template passes, and every spec check and rule
// catches a mutation of it. The spec is loaded once for the whole file.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  parseTemplate, loadTemplate, loadSpec, loadEnvLists, checkTemplate, resolveNumber, formatFinding,
} from './check.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const TEMPLATE = path.resolve(here, '../template.yaml');
const spec = loadSpec();
const env = loadEnvLists();
const base = loadTemplate(TEMPLATE);

const check = (tpl) => checkTemplate(tpl, { spec, env });

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

  test('has the pieces the brief asks for', () => {
    const r = base.Resources;
    assert.equal(r.ReceiverFunction.Properties.Runtime, 'provided.al2023');
    assert.deepEqual(r.ReceiverFunction.Properties.Architectures, ['arm64']);
    assert.deepEqual(r.WorkerFunction.Properties.Architectures, ['arm64']);
    assert.ok(!('Transform' in base), 'no SAM transform');
    const routes = Object.values(r).filter((x) => x.Type === 'AWS::ApiGatewayV2::Route').map((x) => x.Properties.RouteKey).sort();
    assert.deepEqual(routes, ['POST /slack/commands', 'POST /slack/events', 'POST /slack/interactivity']);
    const esm = r.WorkerEventSource.Properties;
    assert.equal(esm.BatchSize, 10);
    assert.equal(esm.MaximumBatchingWindowInSeconds, 0);
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
    writeFileSync(broken, readFileSync(TEMPLATE, 'utf8').replace('Type: AWS::SNS::Topic', 'Type: AWS::SNS::Topik'));
    const bad = spawnSync(process.execPath, [path.join(here, 'cli.mjs'), broken], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /spec\/unknown-type\s+Resources\.AlarmTopic\.Type/);
  });
});

describe('spec checks', () => {
  test('unknown resource type', () => {
    const f = mutated((t) => { t.Resources.AlarmTopic.Type = 'AWS::SNS::Topik'; });
    assertFinding(f, 'spec/unknown-type', 'Resources.AlarmTopic.Type', 'AWS::SNS::Topik');
  });

  test('unknown property', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').VisibilityTimeoutSeconds = 720; });
    assertFinding(f, 'spec/unknown-property', 'Resources.EventsQueue.Properties.VisibilityTimeoutSeconds');
  });

  test('unknown property in a nested type', () => {
    const f = mutated((t) => { R(t, 'WorkerEventSource').ScalingConfig.MaxConcurrency = 5; });
    assertFinding(f, 'spec/unknown-property', 'ScalingConfig.MaxConcurrency');
  });

  test('unknown property in a list of nested types', () => {
    const f = mutated((t) => { R(t, 'IdempotencyTable').KeySchema[0].Type = 'HASH'; });
    assertFinding(f, 'spec/unknown-property', 'KeySchema[0].Type');
  });

  test('unknown key in a tag', () => {
    const f = mutated((t) => { R(t, 'AlarmTopic').Tags[0].Name = 'x'; });
    assertFinding(f, 'spec/unknown-property', 'AlarmTopic.Properties.Tags[0].Name');
  });

  test('unknown resource attribute key', () => {
    const f = mutated((t) => { t.Resources.EventsQueue.DependOn = 'DeadLetterQueue'; });
    assertFinding(f, 'spec/resource-key', 'EventsQueue.DependOn');
  });

  test('wrong type: string for an integer', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').VisibilityTimeout = 'twelve minutes'; });
    assertFinding(f, 'spec/type-mismatch', 'EventsQueue.Properties.VisibilityTimeout', 'integer');
  });

  test('wrong type: scalar for a list', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Architectures = 'arm64'; });
    assertFinding(f, 'spec/type-mismatch', 'ReceiverFunction.Properties.Architectures', 'list');
  });

  test('wrong type: list for a nested object, and object for a string', () => {
    const f = mutated((t) => {
      R(t, 'WorkerEventSource').ScalingConfig = [{ MaximumConcurrency: 2 }];
      R(t, 'ReceiverFunction').Handler = { name: 'bootstrap' };
    });
    assertFinding(f, 'spec/type-mismatch', 'WorkerEventSource.Properties.ScalingConfig', 'object');
    assertFinding(f, 'spec/type-mismatch', 'ReceiverFunction.Properties.Handler', 'string');
  });

  test('wrong type: boolean and map values', () => {
    const f = mutated((t) => {
      R(t, 'EventsQueue').SqsManagedSseEnabled = 'sometimes';
      R(t, 'HttpApi').Tags = ['app'];
      R(t, 'WorkerFunction').Environment.Variables.LOG_LEVEL = ['info'];
    });
    assertFinding(f, 'spec/type-mismatch', 'EventsQueue.Properties.SqsManagedSseEnabled', 'boolean');
    assertFinding(f, 'spec/type-mismatch', 'HttpApi.Properties.Tags', 'map');
    assertFinding(f, 'spec/type-mismatch', 'Variables.LOG_LEVEL', 'string');
  });

  test('wrong type inside an Fn::If branch', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').MemorySize = { 'Fn::If': ['HasLlm', 'lots', 256] }; });
    assertFinding(f, 'spec/type-mismatch', 'MemorySize.Fn::If[1]', 'integer');
  });

  test('coercible values and intrinsics are accepted', () => {
    const f = mutated((t) => {
      R(t, 'EventsQueue').VisibilityTimeout = '720';
      R(t, 'EventsQueue').SqsManagedSseEnabled = 'true';
      R(t, 'ReceiverFunction').MemorySize = { 'Fn::If': ['HasLlm', 512, 256] };
      R(t, 'ReceiverFunction').Architectures = { 'Fn::Split': [',', 'arm64'] };
      R(t, 'WorkerFunction').Environment.Variables.BATCH_CONCURRENCY = 10;
    });
    assert.deepEqual(f.map(formatFinding), []);
  });

  test('missing required property (top level and nested)', () => {
    const f = mutated((t) => {
      delete R(t, 'WorkerEventSource').FunctionName;
      delete R(t, 'IdempotencyTable').KeySchema[0].KeyType;
    });
    assertFinding(f, 'spec/required', 'WorkerEventSource.Properties.FunctionName');
    assertFinding(f, 'spec/required', 'KeySchema[0].KeyType');
  });
});

describe('reference checks', () => {
  test('Ref to an unknown name', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Environment.Variables.EVENTS_QUEUE_URL = { Ref: 'EventQueue' }; });
    assertFinding(f, 'ref/unknown', 'EVENTS_QUEUE_URL', 'EventQueue');
  });

  test('pseudo parameters are valid Ref targets', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Description = { 'Fn::Join': ['-', [{ Ref: 'AWS::StackId' }, { Ref: 'AWS::URLSuffix' }]] }; });
    assert.deepEqual(f.map(formatFinding), []);
  });

  test('GetAtt to an unknown attribute', () => {
    const f = mutated((t) => { R(t, 'WorkerEventSource').EventSourceArn = { 'Fn::GetAtt': ['EventsQueue', 'QueueArn'] }; });
    assertFinding(f, 'getatt/unknown-attribute', 'WorkerEventSource.Properties.EventSourceArn', 'QueueArn');
  });

  test('GetAtt to an unknown resource', () => {
    const f = mutated((t) => { R(t, 'ReceiverFunction').Role = { 'Fn::GetAtt': ['ReceiverRol', 'Arn'] }; });
    assertFinding(f, 'getatt/unknown-resource', 'ReceiverFunction.Properties.Role', 'ReceiverRol');
  });

  test('Sub with an unknown variable and an unknown attribute', () => {
    const f = mutated((t) => {
      t.Outputs.EventsUrl.Value = { 'Fn::Sub': 'https://${HttpApiX}.execute-api.${AWS::Region}.${AWS::URLSuffix}/slack/events' };
      t.Outputs.CommandsUrl.Value = { 'Fn::Sub': '${HttpApi.Endpoint}/slack/commands' };
    });
    assertFinding(f, 'sub/unknown', 'Outputs.EventsUrl.Value', 'HttpApiX');
    assertFinding(f, 'getatt/unknown-attribute', 'Outputs.CommandsUrl.Value', 'Endpoint');
  });

  test('Sub literals, local variables and known attributes pass', () => {
    const f = mutated((t) => {
      t.Outputs.EventsUrl.Value = { 'Fn::Sub': ['${!NotAVar} ${Local} ${HttpApi.ApiEndpoint}/slack/events', { Local: 'x' }] };
    });
    assert.deepEqual(f.map(formatFinding), []);
  });

  test('unknown condition', () => {
    const f = mutated((t) => {
      t.Resources.AlarmEmailSubscription.Condition = 'HasEmail';
      R(t, 'WorkerFunction').Environment.Variables.LLM_API_KEY_PARAM = { 'Fn::If': ['HasLLM', 'a', ''] };
      t.Conditions.Both = { 'Fn::And': [{ Condition: 'HasLlm' }, { Condition: 'Nope' }] };
    });
    assertFinding(f, 'condition/unknown', 'AlarmEmailSubscription.Condition', 'HasEmail');
    assertFinding(f, 'condition/unknown', 'LLM_API_KEY_PARAM', 'HasLLM');
    assertFinding(f, 'condition/unknown', 'Conditions.Both', 'Nope');
  });

  test('DependsOn an unknown resource', () => {
    const f = mutated((t) => { t.Resources.WorkerEventSource.DependsOn = ['WorkerRol']; });
    assertFinding(f, 'ref/unknown', 'WorkerEventSource.DependsOn', 'WorkerRol');
  });
});

describe('project rules', () => {
  test('redrive policy missing', () => {
    const f = mutated((t) => { delete R(t, 'EventsQueue').RedrivePolicy; });
    assertFinding(f, 'rule/redrive', 'EventsQueue.Properties.RedrivePolicy');
  });

  test('redrive policy to another queue', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').RedrivePolicy.deadLetterTargetArn = { 'Fn::GetAtt': ['EventsQueue', 'Arn'] }; });
    assertFinding(f, 'rule/redrive', 'deadLetterTargetArn');
  });

  test('MAX_RECEIVE_COUNT differs from maxReceiveCount', () => {
    const f = mutated((t) => { R(t, 'WorkerFunction').Environment.Variables.MAX_RECEIVE_COUNT = '3'; });
    assertFinding(f, 'rule/max-receive-count', 'MAX_RECEIVE_COUNT');
  });

  test('visibility timeout shorter than 6 x the worker timeout', () => {
    const f = mutated((t) => { R(t, 'EventsQueue').VisibilityTimeout = 600; });
    assertFinding(f, 'rule/visibility-timeout', 'EventsQueue.Properties.VisibilityTimeout', '720');
  });

  test('visibility timeout: a worker timeout parameter without MaxValue cannot be bounded', () => {
    const f = mutated((t) => { delete t.Parameters.WorkerTimeoutSeconds.MaxValue; });
    assertFinding(f, 'rule/visibility-timeout', 'WorkerFunction.Properties.Timeout', 'MaxValue');
  });

  test('visibility timeout: a larger MaxValue on the worker timeout is caught', () => {
    const f = mutated((t) => { t.Parameters.WorkerTimeoutSeconds.MaxValue = 900; });
    assertFinding(f, 'rule/visibility-timeout', 'EventsQueue', '5400');
  });

  test('no ReportBatchItemFailures', () => {
    const f = mutated((t) => { delete R(t, 'WorkerEventSource').FunctionResponseTypes; });
    assertFinding(f, 'rule/report-batch-item-failures', 'WorkerEventSource.Properties.FunctionResponseTypes');
  });

  test('no event source mapping for the worker', () => {
    const f = mutated((t) => { delete t.Resources.WorkerEventSource; });
    assertFinding(f, 'rule/event-source', 'Resources');
  });

  test('DLQ retention not longer than the events queue retention', () => {
    const f1 = mutated((t) => { R(t, 'DeadLetterQueue').MessageRetentionPeriod = 345600; });
    assertFinding(f1, 'rule/dlq-retention', 'DeadLetterQueue.Properties.MessageRetentionPeriod');
    const f2 = mutated((t) => { delete R(t, 'DeadLetterQueue').MessageRetentionPeriod; });
    assertFinding(f2, 'rule/dlq-retention', 'DeadLetterQueue', '345600');
  });

  test('wildcard action', () => {
    const f = mutated((t) => {
      R(t, 'WorkerRole').Policies[0].PolicyDocument.Statement[1].Action = 'sqs:*';
      R(t, 'ReceiverRole').Policies[0].PolicyDocument.Statement[1].Action = ['*'];
    });
    assertFinding(f, 'iam/wildcard-action', 'WorkerRole.Properties.Policies[0].PolicyDocument.Statement[1]', 'sqs:*');
    assertFinding(f, 'iam/wildcard-action', 'ReceiverRole.Properties.Policies[0].PolicyDocument.Statement[1]');
  });

  test('wildcard resource outside the allowlist', () => {
    const f = mutated((t) => { R(t, 'WorkerRole').Policies[0].PolicyDocument.Statement[3].Resource = '*'; });
    assertFinding(f, 'iam/wildcard-resource', 'WorkerRole.Properties.Policies[0].PolicyDocument.Statement[3]', 'dynamodb:GetItem');
  });

  test('kms:Decrypt on "*" needs the kms:ViaService condition', () => {
    const f = mutated((t) => { delete R(t, 'ReceiverRole').Policies[0].PolicyDocument.Statement[3].Condition; });
    assertFinding(f, 'iam/wildcard-resource', 'ReceiverRole', 'kms:ViaService');
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
    const f = checkTemplate(base, { spec, env: { ReceiverFunction: [...env.ReceiverFunction, 'NEW_VAR'], WorkerFunction: env.WorkerFunction } });
    assertFinding(f, 'env/missing', 'ReceiverFunction', 'NEW_VAR');
  });
});

describe('resolveNumber', () => {
  const params = { P: { Type: 'Number', Default: 5, MinValue: 1, MaxValue: 9 }, Q: { Type: 'Number', AllowedValues: ['2', '4'] } };
  test('literals, bounds and allowed values', () => {
    assert.equal(resolveNumber(7, params, 'max').value, 7);
    assert.equal(resolveNumber('7', params, 'min').value, 7);
    assert.equal(resolveNumber({ Ref: 'P' }, params, 'max').value, 9);
    assert.equal(resolveNumber({ Ref: 'P' }, params, 'min').value, 1);
    assert.equal(resolveNumber({ Ref: 'Q' }, params, 'max').value, 4);
    assert.equal(resolveNumber({ Ref: 'Q' }, params, 'min').value, 2);
    assert.equal(resolveNumber({ 'Fn::Sub': 'x' }, params, 'min').value, undefined);
  });
});
