// IAM rules of the template checker (see check.mjs for why they are ours): cfn-lint checks
// that policies are well formed (E3510, W3037, I3510) but accepts any wildcard and any
// resource. Here:
//   - iam/not-action, iam/wildcard-action: no Allow with NotAction, no "*" or "service:*";
//   - iam/wildcard-resource: Resource "*" (or NotResource) only for the actions of
//     WILDCARD_RESOURCE_ALLOWLIST, each with its reason;
//   - iam/ssm-read, iam/kms-decrypt: each function's role reads (ssm:GetParameter*) and
//     decrypts (kms:Decrypt, limited by the condition kms:EncryptionContext:PARAMETER_ARN)
//     exactly the SSM parameters the function reads. Which parameters it reads comes from its
//     environment: the variables named *_PARAM hold SSM parameter names.
//   - iam/sqs-send: each function's role sends (sqs:SendMessage, which also covers
//     SendMessageBatch) only to queues whose URL the function has in its environment (a
//     variable set to !Ref Queue), each named by !GetAtt Queue.Arn.
import { isObj, isNoValue, sameRef, short } from './template.mjs';

const ENCRYPTION_CONTEXT_KEY = 'kms:EncryptionContext:PARAMETER_ARN';

/** Actions allowed on Resource "*", each with the condition key it needs, if any, and why. */
export const WILDCARD_RESOURCE_ALLOWLIST = [
  { action: 'kms:Decrypt', conditionKey: ENCRYPTION_CONTEXT_KEY,
    why: 'the key behind a SecureString (aws/ssm or a customer key) is not known here; the encryption context names the parameter' },
  { action: 'cloudwatch:PutMetricData', why: 'has no resource-level permissions' },
  { action: 'xray:PutTraceSegments', why: 'has no resource-level permissions' },
  { action: 'xray:PutTelemetryRecords', why: 'has no resource-level permissions' },
];

const lower = (s) => (typeof s === 'string' ? s.toLowerCase() : s);
const list = (v) => (v === undefined ? [] : [].concat(v));

/** Policy documents of the template: [{ doc, where, identity, roles }]. */
function policyDocuments(resources) {
  const docs = [];
  for (const [id, r] of Object.entries(resources)) {
    if (!isObj(r) || !isObj(r.Properties)) continue;
    const p = r.Properties;
    const base = `Resources.${id}.Properties`;
    if (['AWS::IAM::Role', 'AWS::IAM::User', 'AWS::IAM::Group'].includes(r.Type)) {
      list(p.Policies).forEach((pol, i) => {
        if (isObj(pol)) {
          docs.push({ doc: pol.PolicyDocument, where: `${base}.Policies[${i}].PolicyDocument`, identity: true, roles: r.Type === 'AWS::IAM::Role' ? [id] : [] });
        }
      });
    }
    if (['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::RolePolicy'].includes(r.Type)) {
      const roles = [...list(p.Roles), ...list(p.RoleName)].map((x) => (isObj(x) ? x.Ref : undefined)).filter(Boolean);
      docs.push({ doc: p.PolicyDocument, where: `${base}.PolicyDocument`, identity: true, roles });
    }
    if (['AWS::IAM::UserPolicy', 'AWS::IAM::GroupPolicy'].includes(r.Type)) {
      docs.push({ doc: p.PolicyDocument, where: `${base}.PolicyDocument`, identity: true, roles: [] });
    }
    if (['AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy', 'AWS::S3::BucketPolicy'].includes(r.Type)) {
      docs.push({ doc: p.PolicyDocument, where: `${base}.PolicyDocument`, identity: false, roles: [] });
    }
  }
  return docs;
}

/** Allow statements: [{ s, where, identity, roles }]. */
function allowStatements(resources) {
  const out = [];
  for (const { doc, where, identity, roles } of policyDocuments(resources)) {
    if (!isObj(doc)) continue;
    list(doc.Statement).forEach((s, i) => {
      if (isObj(s) && s.Effect === 'Allow') out.push({ s, where: `${where}.Statement[${i}]`, identity, roles });
    });
  }
  return out;
}

/** The values of the statement's condition on key (any operator): { op, values } or undefined. */
function conditionOn(s, key) {
  if (!isObj(s.Condition)) return undefined;
  for (const [op, m] of Object.entries(s.Condition)) {
    if (!isObj(m)) continue;
    for (const [k, v] of Object.entries(m)) if (lower(k) === lower(key)) return { op, values: list(v) };
  }
  return undefined;
}

function checkWildcards(stmts, add) {
  for (const { s, where, identity } of stmts) {
    if (s.NotAction !== undefined) add('iam/not-action', where, 'Allow with NotAction grants almost everything');
    if (s.NotResource !== undefined) add('iam/wildcard-resource', where, 'Allow with NotResource');
    const actions = list(s.Action);
    for (const a of actions) {
      if (typeof a === 'string' && (a.trim() === '*' || /^[a-z0-9-]+:\*$/i.test(a.trim()))) add('iam/wildcard-action', where, `Action ${a} is a wildcard`);
    }
    if (!identity || !list(s.Resource).includes('*')) continue;
    for (const a of actions) {
      const entry = WILDCARD_RESOURCE_ALLOWLIST.find((e) => lower(e.action) === lower(a));
      if (!entry) {
        add('iam/wildcard-resource', where, `Resource "*" is not allowed for ${typeof a === 'string' ? a : short(a)}`);
      } else if (entry.conditionKey && !conditionOn(s, entry.conditionKey)) {
        add('iam/wildcard-resource', where, `Resource "*" for ${a} needs a ${entry.conditionKey} condition`);
      }
    }
  }
}

const ARN_PREFIX = 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter';

/**
 * Names a parameter ARN entry of a policy: "param:P" for the ARN of template parameter P,
 * "name:/x" for a literal name, with "?Cond" when wrapped in !If [Cond, arn, AWS::NoValue].
 * Undefined for anything else (a wildcard, another form of ARN).
 */
function arnKey(e) {
  if (isObj(e) && Array.isArray(e['Fn::If']) && isNoValue(e['Fn::If'][2])) {
    const k = arnKey(e['Fn::If'][1]);
    return k && `${k}?${e['Fn::If'][0]}`;
  }
  const sub = isObj(e) ? e['Fn::Sub'] : undefined;
  if (typeof sub !== 'string' || !sub.startsWith(ARN_PREFIX)) return undefined;
  const rest = sub.slice(ARN_PREFIX.length);
  const ref = /^\$\{([A-Za-z0-9]+)\}$/.exec(rest);
  if (ref) return `param:${ref[1]}`;
  return /^\/[A-Za-z0-9_.\-/]+$/.test(rest) ? `name:${rest}` : undefined;
}

/** The SSM parameters a function reads, as arnKey names them, from its *_PARAM variables. */
function readParameters(fnId, fn, parameters, add) {
  const vars = fn.Properties?.Environment?.Variables;
  const keys = new Set();
  for (const [name, v] of Object.entries(isObj(vars) ? vars : {})) {
    if (!name.endsWith('_PARAM')) continue;
    const one = (x) => {
      if (isObj(x) && typeof x.Ref === 'string' && x.Ref in parameters) return `param:${x.Ref}`;
      if (typeof x === 'string' && x.startsWith('/')) return `name:${x}`;
      return undefined;
    };
    const iff = isObj(v) ? v['Fn::If'] : undefined;
    let key;
    if (v === '') continue;
    if (Array.isArray(iff) && (iff[2] === '' || isNoValue(iff[2])) && one(iff[1])) key = `${one(iff[1])}?${iff[0]}`;
    else key = one(v);
    if (key) keys.add(key);
    else add('iam/ssm-read', `Resources.${fnId}.Properties.Environment.Variables.${name}`, `cannot tell which SSM parameter ${name} names: ${short(v)}`);
  }
  return keys;
}

function compare(rule, where, what, got, want, add) {
  for (const k of want) if (!got.has(k)) add(rule, where, `${what} lacks ${k} (the function reads it)`);
  for (const k of got) if (!want.has(k)) add(rule, where, `${what} grants ${k}, which the function does not read`);
}

function checkParameterAccess(ctx, stmts) {
  const { resources, parameters, ids, add } = ctx;
  for (const fnId of [ids.receiverFunction, ids.workerFunction]) {
    const fn = resources[fnId];
    if (!isObj(fn) || !isObj(fn.Properties)) continue;
    const roleId = Object.keys(resources).find((id) => sameRef(fn.Properties.Role, id, 'Arn'));
    if (!roleId) continue;
    const want = readParameters(fnId, fn, parameters, add);
    const mine = stmts.filter((x) => x.roles.includes(roleId));
    const grants = (prefix) => mine.filter(({ s }) => list(s.Action).some((a) => typeof a === 'string' && lower(a).startsWith(prefix)));
    const roleWhere = `Resources.${roleId}`;

    const ssmGot = new Set();
    for (const { s, where } of grants('ssm:getparameter')) {
      for (const r of list(s.Resource)) {
        const k = arnKey(r);
        if (k) ssmGot.add(k);
        else add('iam/ssm-read', where, `ssm:GetParameter* on ${short(r)}: want the exact ARN of a parameter ${fnId} reads`);
      }
    }
    compare('iam/ssm-read', roleWhere, `${roleId}'s ssm:GetParameter*`, ssmGot, want, add);

    const kmsGot = new Set();
    for (const { s, where } of grants('kms:decrypt')) {
      const c = conditionOn(s, ENCRYPTION_CONTEXT_KEY);
      if (!c) {
        add('iam/kms-decrypt', where, `kms:Decrypt without a ${ENCRYPTION_CONTEXT_KEY} condition decrypts more than ${fnId}'s parameters`);
        continue;
      }
      if (c.op !== 'StringEquals') add('iam/kms-decrypt', where, `${ENCRYPTION_CONTEXT_KEY} under ${c.op}, want StringEquals`);
      for (const v of c.values) {
        const k = arnKey(v);
        if (k) kmsGot.add(k);
        else add('iam/kms-decrypt', where, `${ENCRYPTION_CONTEXT_KEY} value ${short(v)}: want the exact ARN of a parameter ${fnId} reads`);
      }
    }
    compare('iam/kms-decrypt', roleWhere, `${roleId}'s kms:Decrypt`, kmsGot, want, add);
  }
}

/** True when the IAM action pattern (with * and ?) covers action. */
function covers(pattern, action) {
  if (typeof pattern !== 'string') return false;
  const re = pattern.trim().toLowerCase().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(action.toLowerCase());
}

function checkQueueSends(ctx, stmts) {
  const { resources, ids, add } = ctx;
  for (const fnId of [ids.receiverFunction, ids.workerFunction]) {
    const fn = resources[fnId];
    if (!isObj(fn) || !isObj(fn.Properties)) continue;
    const roleId = Object.keys(resources).find((id) => sameRef(fn.Properties.Role, id, 'Arn'));
    if (!roleId) continue;
    const vars = fn.Properties.Environment?.Variables;
    const named = Object.values(isObj(vars) ? vars : {})
      .filter((v) => isObj(v) && typeof v.Ref === 'string' && resources[v.Ref]?.Type === 'AWS::SQS::Queue')
      .map((v) => v.Ref);
    const queues = named.length ? named.join(', ') : 'none';
    for (const { s, where } of stmts.filter((x) => x.roles.includes(roleId))) {
      const actions = list(s.Action).filter((a) => covers(a, 'sqs:SendMessage'));
      if (actions.length === 0) continue;
      for (const r of list(s.Resource)) {
        if (named.some((q) => sameRef(r, q, 'Arn'))) continue;
        add('iam/sqs-send', where,
          `${roleId}'s ${actions.join(', ')} on ${short(r)}: ${fnId} may send only to the queues its environment names (${queues}), each as !GetAtt Queue.Arn`);
      }
    }
  }
}

export function checkIam(ctx) {
  const stmts = allowStatements(ctx.resources);
  checkWildcards(stmts, ctx.add);
  checkParameterAccess(ctx, stmts);
  checkQueueSends(ctx, stmts);
}
