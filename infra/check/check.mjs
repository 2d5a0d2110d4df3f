// Offline checker for infra/template.yaml.
//
// 1. parseTemplate: YAML with CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) turned
//    into the long JSON forms ({"Ref": ..}, {"Fn::GetAtt": [..]}, ...).
// 2. spec checks against the CloudFormation resource specification shipped by
//    @aws-cdk/aws-service-spec (db.json.gz): resource types, property names (also inside
//    nested types, lists and maps), value types, required properties, GetAtt attributes.
// 3. reference checks: Ref, GetAtt, ${..} in Sub, Conditions, DependsOn.
// 4. project rules: redrive to the DLQ, visibility timeout vs worker timeout, partial batch
//    responses, DLQ retention, IAM wildcards, Lambda environment vs the Go code's golden
//    lists (receiver/testdata/lambda-env.json, worker/testdata/lambda-env.json).
//
// Dependencies come from ../local/node_modules (installed by `npm ci` in infra/local).
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const localDir = path.resolve(here, '../local');
const requireLocal = createRequire(path.join(localDir, 'package.json'));
const YAML = requireLocal('yaml');

export const REPO_ROOT = path.resolve(here, '../..');
export const SPEC_PATH = path.join(localDir, 'node_modules/@aws-cdk/aws-service-spec/db.json.gz');

// ------------------------------------------------------------------ YAML

const SCALAR_OR_COLLECTION = [
  'Ref', 'GetAtt', 'Sub', 'Join', 'If', 'Equals', 'Not', 'And', 'Or', 'Select', 'Split',
  'FindInMap', 'Base64', 'Cidr', 'GetAZs', 'ImportValue', 'Condition', 'Transform',
  'Length', 'ToJsonString',
];

function longName(tag) {
  if (tag === 'Ref' || tag === 'Condition') return tag;
  return `Fn::${tag}`;
}

function scalarValue(tag, str) {
  if (tag === 'GetAtt') {
    const dot = str.indexOf('.');
    if (dot < 0) return [str];
    return [str.slice(0, dot), str.slice(dot + 1)];
  }
  return str;
}

export const CFN_TAGS = SCALAR_OR_COLLECTION.flatMap((tag) => [
  { tag: `!${tag}`, resolve: (str) => ({ [longName(tag)]: scalarValue(tag, str) }) },
  { tag: `!${tag}`, collection: 'seq', resolve: (seq) => ({ [longName(tag)]: seq.toJSON() }) },
  { tag: `!${tag}`, collection: 'map', resolve: (map) => ({ [longName(tag)]: map.toJSON() }) },
]);

/** Parses a CloudFormation YAML (or JSON) template into plain long-form JSON. */
export function parseTemplate(text) {
  const doc = YAML.parseDocument(text, { customTags: CFN_TAGS, uniqueKeys: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length) {
    throw new Error(`template YAML: ${problems.map((e) => e.message).join('; ')}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

export function loadTemplate(file) {
  return parseTemplate(readFileSync(file, 'utf8'));
}

// ------------------------------------------------------------------ spec

let specCache = null;

/**
 * Loads the resource specification once per process. Returns
 * { resources: Map<cfnType, {properties, attributes}>, types: Map<$id, {name, properties}> }.
 */
export function loadSpec(file = SPEC_PATH) {
  if (specCache && specCache.file === file) return specCache;
  const db = JSON.parse(gunzipSync(readFileSync(file)));
  const schema = db.schema;
  const resources = new Map();
  for (const e of schema.resource.entities) {
    resources.set(e.cloudFormationType, {
      properties: e.properties || {},
      attributes: e.attributes || {},
    });
  }
  const types = new Map();
  for (const t of schema.typeDefinition.entities) {
    types.set(t.$id, { name: t.name, properties: t.properties || {} });
  }
  specCache = { file, resources, types };
  return specCache;
}

// ------------------------------------------------------------------ helpers

export const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId', 'AWS::Region', 'AWS::StackName', 'AWS::Partition', 'AWS::URLSuffix',
  'AWS::NoValue', 'AWS::StackId', 'AWS::NotificationARNs',
]);

const RESOURCE_KEYS = new Set([
  'Type', 'Properties', 'DependsOn', 'Condition', 'Metadata', 'DeletionPolicy',
  'UpdateReplacePolicy', 'CreationPolicy', 'UpdatePolicy', 'Version',
]);

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** An intrinsic function object: exactly one key, Ref or Fn::*. */
export function isIntrinsic(v) {
  if (!isObj(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::'));
}

const isNoValue = (v) => isObj(v) && v.Ref === 'AWS::NoValue' && Object.keys(v).length === 1;

function fmtPath(parts) {
  return parts.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').slice(1);
}

function describe(v) {
  if (Array.isArray(v)) return 'list';
  if (v === null) return 'null';
  if (isObj(v)) return 'object';
  return typeof v;
}

const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const INTEGER = /^[-+]?\d+$/;

// ------------------------------------------------------------------ checker

/**
 * Checks a parsed template. Returns findings: [{ rule, path, message }].
 * opts.spec: result of loadSpec() (loaded when absent)
 * opts.env: { LogicalId: [variable names] } (read from the golden files when absent)
 * opts.ids: logical ids of the pieces the project rules look at
 */
export function checkTemplate(tpl, opts = {}) {
  const spec = opts.spec || loadSpec();
  const env = opts.env || loadEnvLists();
  const ids = { ...DEFAULT_IDS, ...(opts.ids || {}) };
  const findings = [];
  const add = (rule, where, message) => findings.push({ rule, path: where, message });

  if (!isObj(tpl)) {
    add('template/shape', '', 'template is not a mapping');
    return findings;
  }
  const resources = isObj(tpl.Resources) ? tpl.Resources : {};
  const parameters = isObj(tpl.Parameters) ? tpl.Parameters : {};
  const conditions = isObj(tpl.Conditions) ? tpl.Conditions : {};
  if (!isObj(tpl.Resources) || Object.keys(resources).length === 0) {
    add('template/shape', 'Resources', 'template has no Resources');
  }

  checkSpec(resources, spec, add);
  checkReferences(tpl, resources, parameters, conditions, spec, add);
  checkRules(resources, parameters, ids, add);
  checkIam(resources, add);
  checkEnv(resources, env, ids, add);
  return findings;
}

export const DEFAULT_IDS = {
  receiverFunction: 'ReceiverFunction',
  workerFunction: 'WorkerFunction',
  eventsQueue: 'EventsQueue',
  deadLetterQueue: 'DeadLetterQueue',
};

// ---- spec: types, properties, values

function checkSpec(resources, spec, add) {
  for (const [id, res] of Object.entries(resources)) {
    const where = ['Resources', id];
    if (!isObj(res)) {
      add('spec/resource-shape', fmtPath(where), 'resource is not a mapping');
      continue;
    }
    for (const k of Object.keys(res)) {
      if (!RESOURCE_KEYS.has(k)) add('spec/resource-key', fmtPath([...where, k]), `unknown resource attribute ${k}`);
    }
    const type = res.Type;
    if (typeof type !== 'string') {
      add('spec/unknown-type', fmtPath([...where, 'Type']), 'resource has no Type');
      continue;
    }
    if (type.startsWith('Custom::')) continue;
    const def = spec.resources.get(type);
    if (!def) {
      add('spec/unknown-type', fmtPath([...where, 'Type']), `unknown resource type ${type}`);
      continue;
    }
    const props = res.Properties === undefined ? {} : res.Properties;
    if (!isObj(props)) {
      add('spec/type-mismatch', fmtPath([...where, 'Properties']), 'Properties is not a mapping');
      continue;
    }
    checkProperties(props, def.properties, [...where, 'Properties'], type, spec, add);
  }
}

function checkProperties(value, propDefs, where, typeName, spec, add) {
  for (const [name, v] of Object.entries(value)) {
    const pd = propDefs[name];
    if (!pd) {
      add('spec/unknown-property', fmtPath([...where, name]), `${typeName} has no property ${name}`);
      continue;
    }
    checkValue(v, pd.type, [...where, name], spec, add);
  }
  for (const [name, pd] of Object.entries(propDefs)) {
    if (pd.required && !(name in value)) {
      add('spec/required', fmtPath([...where, name]), `${typeName} requires property ${name}`);
    }
  }
}

function mismatch(add, where, want, v) {
  add('spec/type-mismatch', fmtPath(where), `expected ${want}, got ${describe(v)} ${short(v)}`);
}

function short(v) {
  const s = JSON.stringify(v);
  return s && s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function checkValue(v, t, where, spec, add) {
  if (isIntrinsic(v)) {
    // Fn::If: each branch must fit the type (AWS::NoValue removes the property).
    if ('Fn::If' in v && Array.isArray(v['Fn::If']) && v['Fn::If'].length === 3) {
      for (const i of [1, 2]) {
        const b = v['Fn::If'][i];
        if (!isNoValue(b)) checkValue(b, t, [...where, 'Fn::If', i], spec, add);
      }
    }
    return; // other intrinsics are resolved at deploy time
  }
  switch (t.type) {
    case 'string':
    case 'date-time':
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return;
      return mismatch(add, where, 'string', v);
    case 'integer':
      if (typeof v === 'number' && Number.isInteger(v)) return;
      if (typeof v === 'string' && INTEGER.test(v.trim())) return;
      return mismatch(add, where, 'integer', v);
    case 'number':
      if (typeof v === 'number') return;
      if (typeof v === 'string' && NUMERIC.test(v.trim())) return;
      return mismatch(add, where, 'number', v);
    case 'boolean':
      if (typeof v === 'boolean') return;
      if (typeof v === 'string' && /^(true|false)$/i.test(v)) return;
      return mismatch(add, where, 'boolean', v);
    case 'json':
      if (isObj(v) || Array.isArray(v) || typeof v === 'string') return;
      return mismatch(add, where, 'JSON object', v);
    case 'array':
      if (!Array.isArray(v)) return mismatch(add, where, 'list', v);
      v.forEach((item, i) => checkValue(item, t.element, [...where, i], spec, add));
      return;
    case 'map':
      if (!isObj(v)) return mismatch(add, where, 'map', v);
      for (const [k, item] of Object.entries(v)) checkValue(item, t.element, [...where, k], spec, add);
      return;
    case 'tag':
      if (!isObj(v)) return mismatch(add, where, 'tag {Key, Value}', v);
      checkProperties(v, TAG_PROPS, where, 'Tag', spec, add);
      return;
    case 'ref': {
      const td = spec.types.get(t.reference.$ref);
      if (!td) return; // unknown reference in the spec itself: nothing to check against
      if (!isObj(v)) return mismatch(add, where, `object (${td.name})`, v);
      checkProperties(v, td.properties, where, td.name, spec, add);
      return;
    }
    case 'union': {
      // The precise members (list of X, X, string, ...) decide when the value has their
      // shape; a "json" member is only the fallback for values no precise member fits, so
      // that e.g. KeySchema (list of KeySchema | json) still has its items checked.
      let best = null;
      const precise = t.types.filter((m) => m.type !== 'json');
      for (const member of precise) {
        const sub = [];
        checkValue(v, member, where, spec, (rule, p, message) => sub.push({ rule, path: p, message }));
        if (sub.length === 0) return;
        const shapeFits = !sub.some((f) => f.rule === 'spec/type-mismatch' && f.path === fmtPath(where));
        if (!best || (shapeFits && !best.shapeFits)) best = { sub, shapeFits };
      }
      if (best && best.shapeFits) {
        for (const f of best.sub) add(f.rule, f.path, f.message);
        return;
      }
      if (precise.length < t.types.length && (isObj(v) || Array.isArray(v) || typeof v === 'string')) return;
      if (best) for (const f of best.sub) add(f.rule, f.path, f.message);
      else mismatch(add, where, 'JSON object', v);
      return;
    }
    default:
      return; // a kind this checker does not know: accept
  }
}

const TAG_PROPS = {
  Key: { type: { type: 'string' }, required: true },
  Value: { type: { type: 'string' }, required: true },
};

// ---- references

function checkReferences(tpl, resources, parameters, conditions, spec, add) {
  const refTargets = (name) =>
    PSEUDO_PARAMETERS.has(name) || name in parameters || name in resources;

  const checkGetAtt = (resName, attr, where) => {
    const res = resources[resName];
    if (!isObj(res)) {
      add('getatt/unknown-resource', where, `GetAtt names unknown resource ${resName}`);
      return;
    }
    if (typeof attr !== 'string') return; // computed attribute name
    const type = res.Type;
    if (typeof type !== 'string' || type.startsWith('Custom::') || type === 'AWS::CloudFormation::CustomResource') return;
    if (type === 'AWS::CloudFormation::Stack' && attr.startsWith('Outputs.')) return;
    const def = spec.resources.get(type);
    if (!def) return; // reported as unknown type
    if (!(attr in def.attributes)) {
      add('getatt/unknown-attribute', where, `${type} ${resName} has no attribute ${attr}`);
    }
  };

  const checkSub = (str, localVars, where) => {
    if (typeof str !== 'string') return;
    const re = /\$\{([^}]*)\}/g;
    let m;
    while ((m = re.exec(str)) !== null) {
      const name = m[1].trim();
      if (name.startsWith('!')) continue; // ${!Literal}
      if (localVars.has(name)) continue;
      if (name.includes('.') && !PSEUDO_PARAMETERS.has(name)) {
        const dot = name.indexOf('.');
        const resName = name.slice(0, dot);
        if (!(resName in resources)) {
          add('sub/unknown', where, `\${${name}}: ${resName} is not a resource`);
        } else {
          checkGetAtt(resName, name.slice(dot + 1), where);
        }
      } else if (!refTargets(name)) {
        add('sub/unknown', where, `\${${name}} is not a parameter, resource or pseudo parameter`);
      }
    }
  };

  const checkCondition = (name, where) => {
    if (typeof name === 'string' && !(name in conditions)) {
      add('condition/unknown', where, `unknown condition ${name}`);
    }
  };

  const walk = (v, parts, inConditions) => {
    const where = fmtPath(parts);
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, [...parts, i], inConditions));
      return;
    }
    if (!isObj(v)) return;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const k = keys[0];
      const arg = v[k];
      if (k === 'Ref') {
        if (typeof arg !== 'string') add('ref/unknown', where, 'Ref needs a name');
        else if (!refTargets(arg)) add('ref/unknown', where, `Ref to unknown ${arg}`);
        return;
      }
      if (k === 'Fn::GetAtt') {
        let resName; let attr;
        if (typeof arg === 'string') {
          const dot = arg.indexOf('.');
          resName = dot < 0 ? arg : arg.slice(0, dot);
          attr = dot < 0 ? undefined : arg.slice(dot + 1);
        } else if (Array.isArray(arg)) {
          [resName, attr] = arg;
        }
        if (typeof resName !== 'string' || attr === undefined) {
          add('getatt/unknown-attribute', where, 'GetAtt needs [resource, attribute]');
        } else {
          checkGetAtt(resName, attr, where);
        }
        if (Array.isArray(arg) && isObj(arg[1])) walk(arg[1], [...parts, k, 1], inConditions);
        return;
      }
      if (k === 'Fn::Sub') {
        if (typeof arg === 'string') {
          checkSub(arg, new Set(), where);
        } else if (Array.isArray(arg)) {
          const vars = isObj(arg[1]) ? arg[1] : {};
          checkSub(arg[0], new Set(Object.keys(vars)), where);
          walk(vars, [...parts, k, 1], inConditions);
          if (typeof arg[0] !== 'string') walk(arg[0], [...parts, k, 0], inConditions);
        } else {
          add('sub/unknown', where, 'Fn::Sub needs a string or [string, variables]');
        }
        return;
      }
      if (k === 'Fn::If') {
        if (Array.isArray(arg)) {
          checkCondition(arg[0], where);
          walk(arg.slice(1), [...parts, k], inConditions);
        }
        return;
      }
      if (k === 'Condition' && inConditions) {
        checkCondition(arg, where);
        return;
      }
    }
    for (const [k, child] of Object.entries(v)) walk(child, [...parts, k], inConditions);
  };

  for (const [id, res] of Object.entries(resources)) {
    if (!isObj(res)) continue;
    if (res.Condition !== undefined) checkCondition(res.Condition, fmtPath(['Resources', id, 'Condition']));
    const deps = res.DependsOn === undefined ? [] : [].concat(res.DependsOn);
    for (const d of deps) {
      if (!(d in resources)) add('ref/unknown', fmtPath(['Resources', id, 'DependsOn']), `DependsOn unknown resource ${d}`);
    }
    walk(res.Properties, ['Resources', id, 'Properties'], false);
    walk(res.Metadata, ['Resources', id, 'Metadata'], false);
  }
  walk(tpl.Conditions, ['Conditions'], true);
  if (isObj(tpl.Outputs)) {
    for (const [id, out] of Object.entries(tpl.Outputs)) {
      if (!isObj(out) || !('Value' in out)) add('template/output', fmtPath(['Outputs', id]), 'output has no Value');
      if (isObj(out) && out.Condition !== undefined) checkCondition(out.Condition, fmtPath(['Outputs', id, 'Condition']));
      walk(out, ['Outputs', id], false);
    }
  }
}

// ---- numbers through parameters

/**
 * Resolves a numeric value for the rules. bound = 'max' gives the largest value the
 * deployed stack can have (a parameter's MaxValue or largest AllowedValue), 'min' the
 * smallest. Returns { value, how } or { value: undefined, how }.
 */
export function resolveNumber(v, parameters, bound) {
  if (typeof v === 'number') return { value: v, how: 'literal' };
  if (typeof v === 'string' && NUMERIC.test(v.trim())) return { value: Number(v), how: 'literal' };
  if (isObj(v) && typeof v.Ref === 'string' && isObj(parameters[v.Ref])) {
    const p = parameters[v.Ref];
    const allowed = Array.isArray(p.AllowedValues) ? p.AllowedValues.map(Number).filter(Number.isFinite) : [];
    if (bound === 'max') {
      if (p.MaxValue !== undefined) return { value: Number(p.MaxValue), how: `parameter ${v.Ref} MaxValue` };
      if (allowed.length) return { value: Math.max(...allowed), how: `parameter ${v.Ref} AllowedValues` };
    } else {
      if (p.MinValue !== undefined) return { value: Number(p.MinValue), how: `parameter ${v.Ref} MinValue` };
      if (allowed.length) return { value: Math.min(...allowed), how: `parameter ${v.Ref} AllowedValues` };
    }
    return { value: undefined, how: `parameter ${v.Ref} has no ${bound === 'max' ? 'MaxValue' : 'MinValue'}` };
  }
  return { value: undefined, how: `cannot evaluate ${short(v)}` };
}

const sameRef = (v, logicalId, attr) => {
  if (!isObj(v)) return false;
  if (attr === undefined) return v.Ref === logicalId;
  const g = v['Fn::GetAtt'];
  if (Array.isArray(g)) return g[0] === logicalId && g[1] === attr;
  return g === `${logicalId}.${attr}`;
};

// ---- project rules

function checkRules(resources, parameters, ids, add) {
  const eq = resources[ids.eventsQueue];
  const dlq = resources[ids.deadLetterQueue];
  const worker = resources[ids.workerFunction];
  if (!isObj(eq) || eq.Type !== 'AWS::SQS::Queue') {
    add('rule/missing-resource', `Resources.${ids.eventsQueue}`, 'events queue (AWS::SQS::Queue) not found');
  }
  if (!isObj(dlq) || dlq.Type !== 'AWS::SQS::Queue') {
    add('rule/missing-resource', `Resources.${ids.deadLetterQueue}`, 'dead-letter queue (AWS::SQS::Queue) not found');
  }
  if (!isObj(worker) || worker.Type !== 'AWS::Lambda::Function') {
    add('rule/missing-resource', `Resources.${ids.workerFunction}`, 'worker function (AWS::Lambda::Function) not found');
  }
  const eqp = (isObj(eq) && isObj(eq.Properties)) ? eq.Properties : {};
  const dlqp = (isObj(dlq) && isObj(dlq.Properties)) ? dlq.Properties : {};
  const wp = (isObj(worker) && isObj(worker.Properties)) ? worker.Properties : {};

  // Redrive: the events queue sends to the DLQ's ARN.
  let redrive = eqp.RedrivePolicy;
  if (typeof redrive === 'string') {
    try { redrive = JSON.parse(redrive); } catch { redrive = undefined; }
  }
  const rwhere = `Resources.${ids.eventsQueue}.Properties.RedrivePolicy`;
  if (!isObj(redrive)) {
    add('rule/redrive', rwhere, `events queue has no RedrivePolicy to ${ids.deadLetterQueue}`);
  } else {
    if (!sameRef(redrive.deadLetterTargetArn, ids.deadLetterQueue, 'Arn')) {
      add('rule/redrive', `${rwhere}.deadLetterTargetArn`, `deadLetterTargetArn must be !GetAtt ${ids.deadLetterQueue}.Arn`);
    }
    if (redrive.maxReceiveCount === undefined) {
      add('rule/redrive', `${rwhere}.maxReceiveCount`, 'RedrivePolicy has no maxReceiveCount');
    }
    const envCount = isObj(wp.Environment) && isObj(wp.Environment.Variables)
      ? wp.Environment.Variables.MAX_RECEIVE_COUNT : undefined;
    if (envCount !== undefined && redrive.maxReceiveCount !== undefined
      && JSON.stringify(envCount) !== JSON.stringify(redrive.maxReceiveCount)
      && String(envCount) !== String(redrive.maxReceiveCount)) {
      add('rule/max-receive-count', `Resources.${ids.workerFunction}.Properties.Environment.Variables.MAX_RECEIVE_COUNT`,
        `MAX_RECEIVE_COUNT ${short(envCount)} differs from the RedrivePolicy maxReceiveCount ${short(redrive.maxReceiveCount)}`);
    }
  }

  // Event source mapping from the events queue to the worker.
  const mappings = Object.entries(resources).filter(([, r]) => isObj(r) && r.Type === 'AWS::Lambda::EventSourceMapping'
    && isObj(r.Properties)
    && (sameRef(r.Properties.FunctionName, ids.workerFunction) || sameRef(r.Properties.FunctionName, ids.workerFunction, 'Arn')));
  let window = 0;
  if (mappings.length === 0) {
    add('rule/event-source', 'Resources', `no AWS::Lambda::EventSourceMapping for ${ids.workerFunction}`);
  }
  for (const [mid, m] of mappings) {
    const mp = m.Properties;
    if (!sameRef(mp.EventSourceArn, ids.eventsQueue, 'Arn')) {
      add('rule/event-source', `Resources.${mid}.Properties.EventSourceArn`, `event source must be !GetAtt ${ids.eventsQueue}.Arn`);
    }
    const types = Array.isArray(mp.FunctionResponseTypes) ? mp.FunctionResponseTypes : [];
    if (!types.includes('ReportBatchItemFailures')) {
      add('rule/report-batch-item-failures', `Resources.${mid}.Properties.FunctionResponseTypes`,
        'the worker event source must have FunctionResponseTypes [ReportBatchItemFailures]');
    }
    const w = resolveNumber(mp.MaximumBatchingWindowInSeconds ?? 0, parameters, 'max');
    if (w.value !== undefined) window = Math.max(window, w.value);
  }

  // Visibility timeout >= 6 x worker timeout (+ batching window).
  const timeout = resolveNumber(wp.Timeout ?? 3, parameters, 'max');
  const vis = resolveNumber(eqp.VisibilityTimeout ?? 30, parameters, 'min');
  const vwhere = `Resources.${ids.eventsQueue}.Properties.VisibilityTimeout`;
  if (timeout.value === undefined) {
    add('rule/visibility-timeout', `Resources.${ids.workerFunction}.Properties.Timeout`, `worker Timeout: ${timeout.how}`);
  } else if (vis.value === undefined) {
    add('rule/visibility-timeout', vwhere, `VisibilityTimeout: ${vis.how}`);
  } else if (vis.value < 6 * timeout.value + window) {
    add('rule/visibility-timeout', vwhere,
      `VisibilityTimeout ${vis.value} s < 6 x worker Timeout ${timeout.value} s (${timeout.how})${window ? ` + batching window ${window} s` : ''} = ${6 * timeout.value + window} s`);
  }

  // DLQ keeps messages longer than the events queue did.
  const eqRet = resolveNumber(eqp.MessageRetentionPeriod ?? 345600, parameters, 'max');
  const dlqRet = resolveNumber(dlqp.MessageRetentionPeriod ?? 345600, parameters, 'min');
  const dwhere = `Resources.${ids.deadLetterQueue}.Properties.MessageRetentionPeriod`;
  if (eqRet.value === undefined || dlqRet.value === undefined) {
    add('rule/dlq-retention', dwhere, `cannot evaluate retention (${eqRet.how}; ${dlqRet.how})`);
  } else if (!(dlqRet.value > eqRet.value)) {
    add('rule/dlq-retention', dwhere,
      `DLQ MessageRetentionPeriod ${dlqRet.value} s must exceed the events queue's ${eqRet.value} s`);
  }
}

// ---- IAM

/**
 * Actions allowed on Resource "*". Each entry: the action and, optionally, a condition key
 * that must be present in the statement's Condition.
 *  - kms:Decrypt only through SSM (kms:ViaService), for SecureString parameters;
 *  - cloudwatch:PutMetricData has no resource-level permissions;
 *  - xray:PutTraceSegments / PutTelemetryRecords have no resource-level permissions.
 */
export const WILDCARD_RESOURCE_ALLOWLIST = [
  { action: 'kms:Decrypt', conditionKey: 'kms:ViaService' },
  { action: 'cloudwatch:PutMetricData' },
  { action: 'xray:PutTraceSegments' },
  { action: 'xray:PutTelemetryRecords' },
];

function conditionHasKey(cond, key) {
  if (!isObj(cond)) return false;
  return Object.values(cond).some((ops) => isObj(ops)
    && Object.keys(ops).some((k) => k.toLowerCase() === key.toLowerCase()));
}

function policyDocuments(resources) {
  const docs = [];
  for (const [id, r] of Object.entries(resources)) {
    if (!isObj(r) || !isObj(r.Properties)) continue;
    const p = r.Properties;
    const base = ['Resources', id, 'Properties'];
    if (r.Type === 'AWS::IAM::Role' || r.Type === 'AWS::IAM::User' || r.Type === 'AWS::IAM::Group') {
      (Array.isArray(p.Policies) ? p.Policies : []).forEach((pol, i) => {
        if (isObj(pol)) docs.push({ doc: pol.PolicyDocument, where: [...base, 'Policies', i, 'PolicyDocument'], identity: true });
      });
    }
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy'
      || r.Type === 'AWS::IAM::RolePolicy' || r.Type === 'AWS::IAM::UserPolicy' || r.Type === 'AWS::IAM::GroupPolicy') {
      docs.push({ doc: p.PolicyDocument, where: [...base, 'PolicyDocument'], identity: true });
    }
    if (r.Type === 'AWS::SQS::QueuePolicy' || r.Type === 'AWS::SNS::TopicPolicy' || r.Type === 'AWS::S3::BucketPolicy') {
      docs.push({ doc: p.PolicyDocument, where: [...base, 'PolicyDocument'], identity: false });
    }
  }
  return docs;
}

function checkIam(resources, add) {
  for (const { doc, where, identity } of policyDocuments(resources)) {
    if (!isObj(doc)) continue;
    const stmts = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    stmts.forEach((s, i) => {
      if (!isObj(s)) return;
      const sw = fmtPath([...where, 'Statement', i]);
      if (s.Effect !== 'Allow') return;
      if (s.NotAction !== undefined) add('iam/not-action', sw, 'Allow with NotAction grants almost everything');
      if (s.NotResource !== undefined) add('iam/wildcard-resource', sw, 'Allow with NotResource');
      const actions = [].concat(s.Action ?? []);
      for (const a of actions) {
        if (typeof a === 'string' && (a.trim() === '*' || /^[a-z0-9-]+:\*$/i.test(a.trim()))) {
          add('iam/wildcard-action', sw, `Action ${a} is a wildcard`);
        }
      }
      if (!identity) return;
      const res = [].concat(s.Resource ?? []);
      const wildcard = res.some((r) => r === '*' || (isObj(r) && r['Fn::Sub'] === '*'));
      if (!wildcard) return;
      for (const a of actions) {
        const entry = WILDCARD_RESOURCE_ALLOWLIST.find((e) => typeof a === 'string' && e.action.toLowerCase() === a.toLowerCase());
        if (!entry) {
          add('iam/wildcard-resource', sw, `Resource "*" is not allowed for ${typeof a === 'string' ? a : short(a)}`);
        } else if (entry.conditionKey && !conditionHasKey(s.Condition, entry.conditionKey)) {
          add('iam/wildcard-resource', sw, `Resource "*" for ${a} needs a ${entry.conditionKey} condition`);
        }
      }
    });
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

function checkEnv(resources, env, ids, add) {
  for (const id of [ids.receiverFunction, ids.workerFunction]) {
    const want = env[id];
    if (want === undefined) continue;
    const where = `Resources.${id}.Properties.Environment.Variables`;
    if (!Array.isArray(want)) {
      add('env/golden-missing', where, `no variable list for ${id}: ${want && want.missingFile}`);
      continue;
    }
    const fn = resources[id];
    const vars = isObj(fn) && isObj(fn.Properties) && isObj(fn.Properties.Environment)
      && isObj(fn.Properties.Environment.Variables) ? fn.Properties.Environment.Variables : {};
    const have = new Set(Object.keys(vars));
    const wantSet = new Set(want);
    for (const name of want) {
      if (!have.has(name)) add('env/missing', where, `${id} lacks environment variable ${name} (the code reads it)`);
    }
    for (const name of have) {
      if (!wantSet.has(name)) add('env/extra', where, `${id} sets ${name}, which the code does not read`);
    }
  }
}

export function formatFinding(f) {
  return `${f.rule}  ${f.path}: ${f.message}`;
}
