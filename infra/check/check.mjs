// Project rules for infra/template.yaml that cfn-lint has no notion of.
//
// cfn-lint (run by infra/check/cfn-lint.sh in `make test`) validates the template against
// the CloudFormation resource schemas: resource types, property names and value types,
// required properties, Ref/GetAtt/Sub/Condition targets, DependsOn, outputs, policy syntax.
// What it cannot know is what this project needs from its own stack, so that is written
// here, and only that:
//   - queues: redrive from the events queue to the DLQ (and MAX_RECEIVE_COUNT equal to its
//     maxReceiveCount), 1 MiB messages set explicitly, both retained on delete/replace, the
//     DLQ keeping messages 14 days and longer than the events queue;
//   - the worker's event source: from the events queue, ReportBatchItemFailures, and a
//     visibility timeout of at least 6 x the worker timeout (+ batching window) for every
//     value the parameters involved allow (WorkerTimeoutSeconds: each allowed value, with
//     the visibility looked up in Mappings; a value without its entry is a finding too);
//     cfn-lint's E3505 only asks for 1 x, only for literal timeouts, and does not notice an
//     allowed value missing from a mapping;
//   - the worker's record retention: DLQ_RETENTION (a Go duration) equal to the DLQ's
//     MessageRetentionPeriod, and IDEMPOTENCY_TTL at least DLQ_RETENTION + REPLAY_WINDOW;
//   - the receiver's reserved concurrency: a parameter, unreserved by default, never 0;
//   - IAM (iam.mjs): no wildcard actions, no "*" resources without a written reason,
//     ssm:GetParameter* and kms:Decrypt limited to exactly the SSM parameters each function
//     reads, and sqs:SendMessage only to queues the function's environment names;
//   - each function's environment equals the names its Go code reads in Lambda mode (the
//     golden lists receiver/testdata/lambda-env.json and worker/testdata/lambda-env.json);
//   - every cfn-lint rule ignored in the template's metadata has a written reason.
//
// template.mjs reads the YAML; every rule has a failing-template test in check.test.mjs.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { checkIam } from './iam.mjs';
import {
  REPO_ROOT, NO_VALUE, NUMERIC, isObj, short, sameRef, resolveNumber, evaluate, parameterRefs,
} from './template.mjs';

export { parseTemplate, loadTemplate } from './template.mjs';

const props = (r) => (isObj(r) && isObj(r.Properties) ? r.Properties : {});

// ------------------------------------------------------------------ checker

export const DEFAULT_IDS = {
  receiverFunction: 'ReceiverFunction',
  workerFunction: 'WorkerFunction',
  eventsQueue: 'EventsQueue',
  deadLetterQueue: 'DeadLetterQueue',
};

/** SQS's largest message, which both queues set explicitly. */
export const MAX_MESSAGE_SIZE = 1048576;
/** 14 days, SQS's longest retention: how long the runbook says the DLQ keeps a message. */
export const DLQ_RETENTION = 1209600;

/**
 * Checks a parsed template. Returns findings: [{ rule, path, message }].
 * opts.env: { LogicalId: [variable names] } (read from the golden files when absent)
 * opts.ids: logical ids of the pieces the rules look at (DEFAULT_IDS)
 */
export function checkTemplate(tpl, opts = {}) {
  const env = opts.env || loadEnvLists();
  const ids = { ...DEFAULT_IDS, ...(opts.ids || {}) };
  const findings = [];
  const add = (rule, where, message) => findings.push({ rule, path: where, message });
  if (!isObj(tpl) || !isObj(tpl.Resources)) {
    add('template/shape', 'Resources', 'template has no Resources');
    return findings;
  }
  const ctx = { tpl, resources: tpl.Resources, parameters: isObj(tpl.Parameters) ? tpl.Parameters : {}, ids, add };
  checkQueues(ctx);
  checkEventSource(ctx);
  checkRecordRetention(ctx);
  checkReceiverConcurrency(ctx);
  checkIam(ctx);
  checkEnv(ctx, env);
  checkLintIgnores(ctx);
  return findings;
}

function need(ctx, id, type, what) {
  const r = ctx.resources[id];
  if (isObj(r) && r.Type === type) return r;
  ctx.add('rule/missing-resource', `Resources.${id}`, `${what} (${type}) not found`);
  return undefined;
}

// ---- queues

function checkQueues(ctx) {
  const { ids, add, parameters } = ctx;
  const eq = need(ctx, ids.eventsQueue, 'AWS::SQS::Queue', 'events queue');
  const dlq = need(ctx, ids.deadLetterQueue, 'AWS::SQS::Queue', 'dead-letter queue');
  const eqp = props(eq);
  const dlqp = props(dlq);

  for (const [id, q] of [[ids.eventsQueue, eq], [ids.deadLetterQueue, dlq]]) {
    if (!q) continue;
    const size = q.Properties?.MaximumMessageSize;
    if (String(size) !== String(MAX_MESSAGE_SIZE)) {
      add('rule/max-message-size', `Resources.${id}.Properties.MaximumMessageSize`,
        `MaximumMessageSize is ${size === undefined ? 'not set' : short(size)}, want ${MAX_MESSAGE_SIZE} set explicitly (an existing queue keeps the size it was created with)`);
    }
    for (const policy of ['DeletionPolicy', 'UpdateReplacePolicy']) {
      if (q[policy] !== 'Retain') {
        add('rule/retain-queue', `Resources.${id}.${policy}`,
          `${policy} is ${q[policy] === undefined ? 'not set (Delete)' : short(q[policy])}, want Retain: a stack delete or replacement must not destroy queued or dead-lettered events`);
      }
    }
  }

  let redrive = eqp.RedrivePolicy;
  if (typeof redrive === 'string') {
    try { redrive = JSON.parse(redrive); } catch { redrive = undefined; }
  }
  const rwhere = `Resources.${ids.eventsQueue}.Properties.RedrivePolicy`;
  if (eq && !isObj(redrive)) {
    add('rule/redrive', rwhere, `events queue has no RedrivePolicy to ${ids.deadLetterQueue}`);
  } else if (eq) {
    if (!sameRef(redrive.deadLetterTargetArn, ids.deadLetterQueue, 'Arn')) {
      add('rule/redrive', `${rwhere}.deadLetterTargetArn`, `deadLetterTargetArn is ${short(redrive.deadLetterTargetArn)}, want !GetAtt ${ids.deadLetterQueue}.Arn`);
    }
    if (redrive.maxReceiveCount === undefined) add('rule/redrive', `${rwhere}.maxReceiveCount`, 'RedrivePolicy has no maxReceiveCount');
    const envCount = props(ctx.resources[ids.workerFunction]).Environment?.Variables?.MAX_RECEIVE_COUNT;
    if (envCount !== undefined && redrive.maxReceiveCount !== undefined
      && JSON.stringify(envCount) !== JSON.stringify(redrive.maxReceiveCount)
      && String(envCount) !== String(redrive.maxReceiveCount)) {
      add('rule/max-receive-count', `Resources.${ids.workerFunction}.Properties.Environment.Variables.MAX_RECEIVE_COUNT`,
        `MAX_RECEIVE_COUNT ${short(envCount)} differs from the RedrivePolicy maxReceiveCount ${short(redrive.maxReceiveCount)}`);
    }
  }

  if (!dlq) return;
  const dwhere = `Resources.${ids.deadLetterQueue}.Properties.MessageRetentionPeriod`;
  const eqRet = resolveNumber(eqp.MessageRetentionPeriod ?? 345600, parameters, 'max');
  const dlqRet = resolveNumber(dlqp.MessageRetentionPeriod ?? 345600, parameters, 'min');
  if (eqRet.value === undefined || dlqRet.value === undefined) {
    add('rule/dlq-retention', dwhere, `cannot evaluate retention (${eqRet.how}; ${dlqRet.how})`);
    return;
  }
  if (dlqRet.value !== DLQ_RETENTION) {
    add('rule/dlq-retention', dwhere, `DLQ MessageRetentionPeriod is ${dlqRet.value} s, want ${DLQ_RETENTION} s (14 days)`);
  }
  if (!(dlqRet.value > eqRet.value)) {
    add('rule/dlq-retention', dwhere, `DLQ MessageRetentionPeriod ${dlqRet.value} s must exceed the events queue's ${eqRet.value} s`);
  }
}

// ---- the worker's event source

function checkEventSource(ctx) {
  const { ids, add, resources } = ctx;
  const worker = need(ctx, ids.workerFunction, 'AWS::Lambda::Function', 'worker function');
  const mappings = Object.entries(resources).filter(([, r]) => isObj(r) && r.Type === 'AWS::Lambda::EventSourceMapping'
    && (sameRef(props(r).FunctionName, ids.workerFunction) || sameRef(props(r).FunctionName, ids.workerFunction, 'Arn')));
  if (mappings.length === 0) add('rule/event-source', 'Resources', `no AWS::Lambda::EventSourceMapping for ${ids.workerFunction}`);
  for (const [mid, m] of mappings) {
    const mp = m.Properties;
    if (!sameRef(mp.EventSourceArn, ids.eventsQueue, 'Arn')) {
      add('rule/event-source', `Resources.${mid}.Properties.EventSourceArn`, `event source is ${short(mp.EventSourceArn)}, want !GetAtt ${ids.eventsQueue}.Arn`);
    }
    if (!(Array.isArray(mp.FunctionResponseTypes) && mp.FunctionResponseTypes.includes('ReportBatchItemFailures'))) {
      add('rule/report-batch-item-failures', `Resources.${mid}.Properties.FunctionResponseTypes`,
        'the worker event source must have FunctionResponseTypes [ReportBatchItemFailures] (the worker reports failed messages one by one)');
    }
  }
  if (worker) checkVisibilityTimeout(ctx, worker, mappings);
}

/**
 * rule/visibility-timeout: the events queue's VisibilityTimeout is at least 6 x the worker's
 * Timeout + the batching window, for every value the parameters they use can take together:
 * each of a parameter's AllowedValues (a VisibilityTimeout looked up in Mappings by the
 * timeout's parameter is checked entry by entry), or, for a parameter used directly as the
 * whole value, its worst bound (MaxValue for the timeout and the window, MinValue for the
 * visibility).
 */
function checkVisibilityTimeout(ctx, worker, mappings) {
  const { ids, add, parameters, tpl, resources } = ctx;
  const terms = [
    { what: 'worker Timeout', v: props(worker).Timeout ?? 3, bound: 'max',
      where: `Resources.${ids.workerFunction}.Properties.Timeout` },
    { what: 'VisibilityTimeout', v: props(resources[ids.eventsQueue]).VisibilityTimeout ?? 30, bound: 'min',
      where: `Resources.${ids.eventsQueue}.Properties.VisibilityTimeout` },
    ...mappings.map(([mid, m]) => ({ what: 'batching window', v: m.Properties.MaximumBatchingWindowInSeconds ?? 0, bound: 'max',
      where: `Resources.${mid}.Properties.MaximumBatchingWindowInSeconds` })),
  ];
  // A parameter used as the whole value without AllowedValues stands for its worst bound.
  for (const t of terms) {
    if (!(isObj(t.v) && typeof t.v.Ref === 'string' && isObj(parameters[t.v.Ref]) && !Array.isArray(parameters[t.v.Ref].AllowedValues))) continue;
    const r = resolveNumber(t.v, parameters, t.bound);
    if (r.value === undefined) {
      add('rule/visibility-timeout', t.where, `${t.what}: ${r.how}`);
      return;
    }
    t.v = r.value;
    t.how = r.how;
  }
  // Any other parameter needs AllowedValues: each combination of them is tried.
  const names = [...parameterRefs(terms.map((t) => t.v), parameters)];
  for (const name of names) {
    if (!Array.isArray(parameters[name].AllowedValues)) {
      const t = terms.find((x) => parameterRefs(x.v, parameters).has(name));
      add('rule/visibility-timeout', t.where, `${t.what} ${short(t.v)} depends on parameter ${name}, which has no AllowedValues to try one by one`);
      return;
    }
  }
  let cases = [{}];
  for (const name of names) cases = cases.flatMap((c) => parameters[name].AllowedValues.map((a) => ({ ...c, [name]: String(a) })));

  for (const values of cases) {
    const given = names.map((n) => `${n}=${values[n]}`).join(', ');
    const withValues = given ? ` with ${given}` : '';
    const got = terms.map((t) => {
      const lookups = [];
      let value;
      try {
        value = evaluate(t.v, tpl, values, lookups);
      } catch (err) {
        add('rule/visibility-timeout', t.where, `${t.what}${withValues}: ${err.message}`);
        return undefined;
      }
      if (typeof value === 'string' && NUMERIC.test(value.trim())) value = Number(value);
      if (typeof value !== 'number') {
        add('rule/visibility-timeout', t.where, `${t.what}${withValues} is ${short(value)}, not a number`);
        return undefined;
      }
      return { value, where: lookups.at(-1) ?? t.where, how: t.how ? ` (${t.how})` : '' };
    });
    if (got.includes(undefined)) continue;
    const [timeout, vis, ...windows] = got;
    const window = Math.max(0, ...windows.map((w) => w.value));
    const want = 6 * timeout.value + window;
    if (vis.value < want) {
      add('rule/visibility-timeout', vis.where,
        `${ids.eventsQueue} VisibilityTimeout ${vis.value} s${vis.how} < 6 x worker Timeout ${timeout.value} s${timeout.how}${window ? ` + batching window ${window} s` : ''} = ${want} s${given ? `, with ${given}` : ''}`);
    }
  }
}

// ---- how long the worker keeps an event's record

const GO_UNITS = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1000000n, s: 1000000000n, m: 60000000000n, h: 3600000000000n };

/**
 * Parses a duration as Go's time.ParseDuration does ("336h", "1h30m", "1.5h", "-2m", "0"),
 * returning nanoseconds as a BigInt. Throws on anything else ("14d" is not Go syntax).
 */
export function parseGoDuration(text) {
  const str = String(text);
  const body = str.replace(/^[-+]/, '');
  const part = /(\d+\.?\d*|\.\d+)([^\d.]*)/gy;
  let ns = 0n;
  if (body !== '0') {
    if (body === '') throw new Error('empty');
    let m;
    let end = 0;
    while ((m = part.exec(body)) !== null) {
      const [, num, unit] = m;
      if (unit === '') throw new Error(`missing unit after ${num}`);
      if (!Object.hasOwn(GO_UNITS, unit)) throw new Error(`unknown unit ${JSON.stringify(unit)} (Go knows ns, us, ms, s, m, h)`);
      const [whole, frac = ''] = num.split('.');
      const scale = 10n ** BigInt(frac.length);
      ns += BigInt(whole || '0') * GO_UNITS[unit] + (BigInt(frac || '0') * GO_UNITS[unit]) / scale;
      end = part.lastIndex;
    }
    if (end !== body.length) throw new Error(`cannot read ${JSON.stringify(body.slice(end))}`);
  }
  if (ns > 2n ** 63n - 1n) throw new Error('out of range');
  return str.startsWith('-') ? -ns : ns;
}

const NS = 1000000000n;

/** A duration in nanoseconds as "N s" (with hours when whole: "1209600 s = 336h"). */
function seconds(ns) {
  const s = Number(ns) / 1e9;
  return ns % (3600n * NS) === 0n && ns !== 0n ? `${s} s = ${s / 3600}h` : `${s} s`;
}

/**
 * rule/record-retention: the worker's DLQ_RETENTION is the DLQ's MessageRetentionPeriod, and
 * its IDEMPOTENCY_TTL at least DLQ_RETENTION + REPLAY_WINDOW (the worker refuses to start
 * otherwise): a replayed or redriven dead letter still finds its record, so it is not
 * answered twice.
 */
function checkRecordRetention(ctx) {
  const { ids, add, parameters, resources } = ctx;
  const fn = resources[ids.workerFunction];
  if (!isObj(fn)) return;
  const vars = props(fn).Environment?.Variables;
  const where = (name) => `Resources.${ids.workerFunction}.Properties.Environment.Variables.${name}`;
  const d = {};
  for (const name of ['DLQ_RETENTION', 'REPLAY_WINDOW', 'IDEMPOTENCY_TTL']) {
    const v = isObj(vars) ? vars[name] : undefined;
    if (typeof v !== 'string') {
      add('rule/record-retention', where(name), `${name} is ${v === undefined ? 'not set' : short(v)}, want a Go duration written out, such as "336h"`);
      continue;
    }
    try {
      d[name] = parseGoDuration(v);
    } catch (err) {
      add('rule/record-retention', where(name), `${name} ${JSON.stringify(v)} is not a Go duration: ${err.message}`);
    }
  }
  const dlq = resources[ids.deadLetterQueue];
  const retWhere = `Resources.${ids.deadLetterQueue}.Properties.MessageRetentionPeriod`;
  const ret = resolveNumber(props(dlq).MessageRetentionPeriod ?? 345600, parameters, 'min');
  if (d.DLQ_RETENTION !== undefined && isObj(dlq)) {
    if (ret.how !== 'literal' || !Number.isInteger(ret.value)) {
      add('rule/record-retention', retWhere, `cannot tell the DLQ's retention for DLQ_RETENTION: want a literal number of seconds, got ${short(props(dlq).MessageRetentionPeriod)}`);
    } else if (d.DLQ_RETENTION !== BigInt(ret.value) * NS) {
      add('rule/record-retention', where('DLQ_RETENTION'),
        `DLQ_RETENTION ${vars.DLQ_RETENTION} (${seconds(d.DLQ_RETENTION)}) differs from ${retWhere} ${seconds(BigInt(ret.value) * NS)}`);
    }
  }
  if (d.IDEMPOTENCY_TTL !== undefined && d.DLQ_RETENTION !== undefined && d.REPLAY_WINDOW !== undefined) {
    const want = d.DLQ_RETENTION + d.REPLAY_WINDOW;
    if (d.IDEMPOTENCY_TTL < want) {
      add('rule/record-retention', where('IDEMPOTENCY_TTL'),
        `IDEMPOTENCY_TTL ${vars.IDEMPOTENCY_TTL} (${seconds(d.IDEMPOTENCY_TTL)}) < DLQ_RETENTION ${vars.DLQ_RETENTION} + REPLAY_WINDOW ${vars.REPLAY_WINDOW} (${seconds(want)}): a replayed dead letter could outlive its record and be answered twice; the worker refuses to start`);
    }
  }
}

// ---- the receiver's reserved concurrency

/** Values of a parameter worth trying: its default, empty and the spellings of zero it admits. */
function candidateValues(p) {
  const out = new Set(['', '0', '00', '1']);
  if (p.Default !== undefined) out.add(String(p.Default));
  const admits = (v) => {
    if (Array.isArray(p.AllowedValues)) return p.AllowedValues.map(String).includes(v);
    if (p.Type === 'Number') {
      if (!NUMERIC.test(v)) return false;
      if (p.MinValue !== undefined && Number(v) < Number(p.MinValue)) return false;
      if (p.MaxValue !== undefined && Number(v) > Number(p.MaxValue)) return false;
    }
    return p.AllowedPattern === undefined || new RegExp(p.AllowedPattern).test(v);
  };
  return [...out].filter(admits);
}

function checkReceiverConcurrency(ctx) {
  const { ids, add, parameters, tpl } = ctx;
  const fn = need(ctx, ids.receiverFunction, 'AWS::Lambda::Function', 'receiver function');
  if (!fn) return;
  const where = `Resources.${ids.receiverFunction}.Properties.ReservedConcurrentExecutions`;
  const v = props(fn).ReservedConcurrentExecutions;
  const refs = [...new Set(JSON.stringify(v ?? null).match(/"Ref":"[^"]+"/g) || [])]
    .map((s) => s.slice(7, -1)).filter((n) => n in parameters);
  if (v === undefined || refs.length !== 1) {
    add('rule/receiver-concurrency', where,
      `want the receiver's reserved concurrency from one parameter, unreserved by default (!If [Condition, !Ref Param, !Ref AWS::NoValue]), got ${v === undefined ? 'nothing' : short(v)}`);
    return;
  }
  const [name] = refs;
  const p = parameters[name];
  for (const value of candidateValues(p)) {
    let got;
    try {
      got = evaluate(v, tpl, { [name]: value });
    } catch (err) {
      add('rule/receiver-concurrency', where, `${name}=${JSON.stringify(value)}: ${err.message}`);
      continue;
    }
    if (value === String(p.Default ?? '') && got !== NO_VALUE) {
      add('rule/receiver-concurrency', where, `with ${name} at its default ${JSON.stringify(value)} the receiver is reserved ${short(got)}, want unreserved (AWS::NoValue)`);
    } else if (got !== NO_VALUE && !(/^\d+$/.test(String(got)) && Number(got) > 0)) {
      add('rule/receiver-concurrency', where,
        `${name}=${JSON.stringify(value)} gives ReservedConcurrentExecutions ${short(got)}, want AWS::NoValue or a positive integer (0 would throttle every Slack request)`);
    }
  }
}

// ---- Lambda environment vs the Go code

export function loadEnvLists(root = REPO_ROOT) {
  const out = {};
  for (const [id, dir] of [[DEFAULT_IDS.receiverFunction, 'receiver'], [DEFAULT_IDS.workerFunction, 'worker']]) {
    const file = path.join(root, dir, 'testdata', 'lambda-env.json');
    out[id] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { missingFile: file };
  }
  return out;
}

function checkEnv(ctx, env) {
  const { ids, add, resources } = ctx;
  for (const id of [ids.receiverFunction, ids.workerFunction]) {
    const want = env[id];
    if (want === undefined) continue;
    const where = `Resources.${id}.Properties.Environment.Variables`;
    if (!Array.isArray(want)) {
      add('env/golden-missing', where, `no variable list for ${id}: ${want && want.missingFile}`);
      continue;
    }
    const vars = props(resources[id]).Environment?.Variables;
    const have = new Set(Object.keys(isObj(vars) ? vars : {}));
    for (const name of want) if (!have.has(name)) add('env/missing', where, `${id} lacks environment variable ${name} (the code reads it)`);
    for (const name of have) if (!want.includes(name)) add('env/extra', where, `${id} sets ${name}, which the code does not read`);
  }
}

// ---- cfn-lint ignores

/**
 * Each rule id under Metadata.cfn-lint.config.ignore_checks (of the template or of a
 * resource) needs a reason beside it: Metadata.cfn-lint.ignore_reasons.<id>.
 */
function checkLintIgnores(ctx) {
  const places = [['Metadata', ctx.tpl.Metadata],
    ...Object.entries(ctx.resources).map(([id, r]) => [`Resources.${id}.Metadata`, isObj(r) ? r.Metadata : undefined])];
  for (const [where, md] of places) {
    const lint = isObj(md) && isObj(md['cfn-lint']) ? md['cfn-lint'] : undefined;
    if (!lint) continue;
    const ignored = Array.isArray(lint.config?.ignore_checks) ? lint.config.ignore_checks : [];
    const reasons = isObj(lint.ignore_reasons) ? lint.ignore_reasons : {};
    for (const id of ignored) {
      if (typeof reasons[id] !== 'string' || reasons[id].trim() === '') {
        ctx.add('lint/ignore-reason', `${where}.cfn-lint.config.ignore_checks`, `cfn-lint rule ${id} is ignored without a reason (want cfn-lint.ignore_reasons.${id}: why)`);
      }
    }
    for (const id of Object.keys(reasons)) {
      if (!ignored.includes(id)) ctx.add('lint/ignore-reason', `${where}.cfn-lint.ignore_reasons.${id}`, `reason given for ${id}, which is not ignored`);
    }
  }
}

export function formatFinding(f) {
  return `${f.rule}  ${f.path}: ${f.message}`;
}
