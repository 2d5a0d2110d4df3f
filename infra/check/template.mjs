// CloudFormation template reading for the checker (check.mjs): YAML with the short tags
// (!Ref, !GetAtt, !Sub, ...) turned into their long JSON forms by the `yaml` package (from
// ../local/node_modules, `make deps`), and the small evaluation the project rules need:
// numbers bounded through parameters, and values through Fn::If, Conditions and Mappings.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const YAML = createRequire(path.resolve(here, '../local/package.json'))('yaml');

export const REPO_ROOT = path.resolve(here, '../..');

// ------------------------------------------------------------------ YAML

const SHORT_TAGS = [
  'Ref', 'GetAtt', 'Sub', 'Join', 'If', 'Equals', 'Not', 'And', 'Or', 'Select', 'Split',
  'FindInMap', 'Base64', 'Cidr', 'GetAZs', 'ImportValue', 'Condition', 'Transform',
  'Length', 'ToJsonString',
];

const longName = (tag) => (tag === 'Ref' || tag === 'Condition' ? tag : `Fn::${tag}`);

function scalarValue(tag, str) {
  if (tag !== 'GetAtt') return str;
  const dot = str.indexOf('.');
  return dot < 0 ? [str] : [str.slice(0, dot), str.slice(dot + 1)];
}

export const CFN_TAGS = SHORT_TAGS.flatMap((tag) => [
  { tag: `!${tag}`, resolve: (str) => ({ [longName(tag)]: scalarValue(tag, str) }) },
  { tag: `!${tag}`, collection: 'seq', resolve: (seq) => ({ [longName(tag)]: seq.toJSON() }) },
  { tag: `!${tag}`, collection: 'map', resolve: (map) => ({ [longName(tag)]: map.toJSON() }) },
]);

/** Parses a CloudFormation YAML (or JSON) template into plain long-form JSON. */
export function parseTemplate(text) {
  const doc = YAML.parseDocument(text, { customTags: CFN_TAGS, uniqueKeys: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length) throw new Error(`template YAML: ${problems.map((e) => e.message).join('; ')}`);
  return doc.toJS({ maxAliasCount: 100 });
}

export function loadTemplate(file) {
  return parseTemplate(readFileSync(file, 'utf8'));
}

// ------------------------------------------------------------------ helpers

export const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const NO_VALUE = Symbol('AWS::NoValue');
export const isNoValue = (v) => isObj(v) && v.Ref === 'AWS::NoValue' && Object.keys(v).length === 1;

export function short(v) {
  const s = JSON.stringify(v);
  return s && s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** True when v is `!Ref id` (attr undefined) or `!GetAtt id.attr`. */
export function sameRef(v, id, attr) {
  if (!isObj(v)) return false;
  if (attr === undefined) return v.Ref === id;
  const g = v['Fn::GetAtt'];
  return Array.isArray(g) ? g[0] === id && g[1] === attr : g === `${id}.${attr}`;
}

export const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * Resolves a numeric value for the rules. bound = 'max' gives the largest value the deployed
 * stack can have (a parameter's MaxValue or largest AllowedValue), 'min' the smallest.
 * Returns { value, how } (value undefined when it cannot be bounded).
 */
export function resolveNumber(v, parameters, bound) {
  if (typeof v === 'number') return { value: v, how: 'literal' };
  if (typeof v === 'string' && NUMERIC.test(v.trim())) return { value: Number(v), how: 'literal' };
  if (isObj(v) && typeof v.Ref === 'string' && isObj(parameters[v.Ref])) {
    const p = parameters[v.Ref];
    const allowed = Array.isArray(p.AllowedValues) ? p.AllowedValues.map(Number).filter(Number.isFinite) : [];
    const [limit, pick] = bound === 'max' ? ['MaxValue', Math.max] : ['MinValue', Math.min];
    if (p[limit] !== undefined) return { value: Number(p[limit]), how: `parameter ${v.Ref} ${limit}` };
    if (allowed.length) return { value: pick(...allowed), how: `parameter ${v.Ref} AllowedValues` };
    return { value: undefined, how: `parameter ${v.Ref} has no ${limit}` };
  }
  return { value: undefined, how: `cannot evaluate ${short(v)}` };
}

/** The names of the template parameters v refers to with Ref, anywhere inside it. */
export function parameterRefs(v, parameters, out = new Set()) {
  if (Array.isArray(v)) {
    for (const x of v) parameterRefs(x, parameters, out);
  } else if (isObj(v)) {
    if (typeof v.Ref === 'string' && v.Ref in parameters) out.add(v.Ref);
    for (const x of Object.values(v)) parameterRefs(x, parameters, out);
  }
  return out;
}

/**
 * Evaluates a value of the template for given parameter values: Ref to a parameter,
 * Fn::FindInMap in the template's Mappings, Fn::If with the conditions it names (Equals,
 * Not, And, Or, Condition) and AWS::NoValue (NO_VALUE). Throws on anything else. Each
 * mapping entry read is pushed onto lookups (when given) as "Mappings.Map.Key.Key".
 */
export function evaluate(v, tpl, values, lookups = []) {
  const conditions = isObj(tpl.Conditions) ? tpl.Conditions : {};
  const mappings = isObj(tpl.Mappings) ? tpl.Mappings : {};
  const key = (x) => {
    const k = val(x);
    if (typeof k !== 'string' && typeof k !== 'number') throw new Error(`Fn::FindInMap key ${short(x)} is not a name`);
    return String(k);
  };
  const findInMap = (args) => {
    if (!Array.isArray(args) || args.length !== 3) throw new Error(`Fn::FindInMap takes [map, key, key], got ${short(args)}`);
    const [map, top, second] = args.map(key);
    const where = `Mappings.${map}`;
    if (!isObj(mappings[map])) throw new Error(`no mapping ${where}`);
    if (!Object.hasOwn(mappings[map], top) || !isObj(mappings[map][top])) throw new Error(`${where} has no key ${JSON.stringify(top)}`);
    if (!Object.hasOwn(mappings[map][top], second)) throw new Error(`${where}.${top} has no key ${JSON.stringify(second)}`);
    lookups.push(`${where}.${top}.${second}`);
    return mappings[map][top][second];
  };
  const cond = (c) => {
    if (typeof c === 'string') {
      if (!(c in conditions)) throw new Error(`unknown condition ${c}`);
      return cond(conditions[c]);
    }
    if (isObj(c) && 'Condition' in c) return cond(c.Condition);
    if (isObj(c) && Array.isArray(c['Fn::Equals'])) {
      const [a, b] = c['Fn::Equals'].map((x) => String(val(x)));
      return a === b;
    }
    if (isObj(c) && Array.isArray(c['Fn::Not'])) return !cond(c['Fn::Not'][0]);
    if (isObj(c) && Array.isArray(c['Fn::And'])) return c['Fn::And'].every(cond);
    if (isObj(c) && Array.isArray(c['Fn::Or'])) return c['Fn::Or'].some(cond);
    throw new Error(`cannot evaluate condition ${short(c)}`);
  };
  const val = (x) => {
    if (isNoValue(x)) return NO_VALUE;
    if (isObj(x) && typeof x.Ref === 'string') {
      if (!(x.Ref in values)) throw new Error(`no value for ${x.Ref}`);
      return values[x.Ref];
    }
    if (isObj(x) && Array.isArray(x['Fn::If'])) {
      const [c, yes, no] = x['Fn::If'];
      return val(cond(c) ? yes : no);
    }
    if (isObj(x) && 'Fn::FindInMap' in x) return findInMap(x['Fn::FindInMap']);
    if (isObj(x) || Array.isArray(x)) throw new Error(`cannot evaluate ${short(x)}`);
    return x;
  };
  return val(v);
}

