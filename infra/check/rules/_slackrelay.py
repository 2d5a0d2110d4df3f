"""Helpers shared by slackrelay's cfn-lint rules (this file holds no rule: cfn-lint's
--append-rules loads only files whose names start with a letter or a digit).

The rule files import it with their own folder on sys.path. What is here: the logical ids the
rules look for, reading a decoded template (cfn-lint hands rules the long JSON forms: !Ref X is
{"Ref": "X"}, !GetAtt X.Arn is {"Fn::GetAtt": ["X", "Arn"]}), the small evaluation the rules
need (numbers bounded through parameters; values through Fn::If, Conditions and Mappings for
given parameter values), Go durations, and the IAM policy statements of a template.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Iterator

RECEIVER = "ReceiverFunction"
WORKER = "WorkerFunction"
EVENTS = "EventsQueue"
DLQ = "DeadLetterQueue"

FUNCTION = "AWS::Lambda::Function"
QUEUE = "AWS::SQS::Queue"

NUMERIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class EvalError(Exception):
    """A value the rules cannot evaluate."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def short(v: Any) -> str:
    """v as JSON, cut to 80 characters."""
    s = json.dumps(v, default=str)
    return s if len(s) <= 80 else s[:77] + "..."


def props(resource: Any) -> dict:
    p = resource.get("Properties") if isinstance(resource, dict) else None
    return p if isinstance(p, dict) else {}


def resource(cfn, rid: str, rtype: str) -> dict | None:
    """Resources.rid when it is of type rtype."""
    r = (cfn.template.get("Resources") or {}).get(rid)
    return r if isinstance(r, dict) and r.get("Type") == rtype else None


def parameters(cfn) -> dict:
    p = cfn.template.get("Parameters")
    return p if isinstance(p, dict) else {}


def env_vars(fn: Any) -> dict:
    v = props(fn).get("Environment", {})
    v = v.get("Variables") if isinstance(v, dict) else None
    return v if isinstance(v, dict) else {}


def same_ref(v: Any, rid: str, attr: str | None = None) -> bool:
    """True when v is {"Ref": rid} (attr None) or {"Fn::GetAtt": [rid, attr]}."""
    if not isinstance(v, dict) or len(v) != 1:
        return False
    if attr is None:
        return v.get("Ref") == rid
    g = v.get("Fn::GetAtt")
    if isinstance(g, str):
        return g == f"{rid}.{attr}"
    return isinstance(g, list) and len(g) == 2 and g[0] == rid and g[1] == attr


def ref_target(v: Any) -> str | None:
    """The logical id v names with Ref or Fn::GetAtt, else None."""
    if not isinstance(v, dict) or len(v) != 1:
        return None
    if isinstance(v.get("Ref"), str):
        return v["Ref"]
    g = v.get("Fn::GetAtt")
    if isinstance(g, list) and g and isinstance(g[0], str):
        return g[0]
    if isinstance(g, str):
        return g.split(".", 1)[0]
    return None


def as_list(v: Any) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def number(v: Any) -> int | float | None:
    """v as a number when it is one written out (5, "5", "5.0"), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and NUMERIC.match(v.strip()):
        f = float(v)
        return int(f) if f.is_integer() else f
    return None


def resolve_number(v: Any, params: dict, bound: str) -> tuple[Any, str]:
    """The largest (bound "max") or smallest ("min") value v can have in the deployed stack:
    a literal, or a parameter's MaxValue/MinValue or its largest/smallest AllowedValues.
    Returns (value or None, how)."""
    n = number(v)
    if n is not None:
        return n, "literal"
    name = v.get("Ref") if isinstance(v, dict) else None
    if isinstance(name, str) and isinstance(params.get(name), dict):
        p = params[name]
        limit, pick = ("MaxValue", max) if bound == "max" else ("MinValue", min)
        if p.get(limit) is not None:
            return number(p[limit]), f"parameter {name} {limit}"
        allowed = [x for x in (number(a) for a in as_list(p.get("AllowedValues"))) if x is not None]
        if allowed:
            return pick(allowed), f"parameter {name} AllowedValues"
        return None, f"parameter {name} has no {limit}"
    return None, f"cannot evaluate {short(v)}"


def parameter_refs(v: Any, params: dict, out: set | None = None) -> set:
    """The names of the template parameters v refers to with Ref, anywhere inside it."""
    out = set() if out is None else out
    if isinstance(v, list):
        for x in v:
            parameter_refs(x, params, out)
    elif isinstance(v, dict):
        if isinstance(v.get("Ref"), str) and v["Ref"] in params:
            out.add(v["Ref"])
        for x in v.values():
            parameter_refs(x, params, out)
    return out


def evaluate(v: Any, tpl: dict, values: dict, lookups: list | None = None) -> Any:
    """v for the given parameter values ({name: string, or a list of strings for a list
    parameter}): Ref to a parameter, Fn::FindInMap, Fn::Join, Fn::If through Conditions
    (Equals, Not, And, Or, Condition) and AWS::NoValue (NO_VALUE). Raises EvalError on
    anything else. Appends each mapping entry read to lookups as a cfn-lint path
    (["Mappings", map, key, key])."""
    conditions = tpl.get("Conditions") if isinstance(tpl.get("Conditions"), dict) else {}
    mappings = tpl.get("Mappings") if isinstance(tpl.get("Mappings"), dict) else {}
    lookups = [] if lookups is None else lookups

    def key(x):
        k = val(x)
        if isinstance(k, bool) or not isinstance(k, (str, int, float)):
            raise EvalError(f"Fn::FindInMap key {short(x)} is not a name")
        return str(k)

    def find_in_map(args):
        if not isinstance(args, list) or len(args) != 3:
            raise EvalError(f"Fn::FindInMap takes [map, key, key], got {short(args)}")
        name, top, second = (key(a) for a in args)
        where = f"Mappings.{name}"
        m = mappings.get(name)
        if not isinstance(m, dict):
            raise EvalError(f"no mapping {where}")
        if not isinstance(m.get(top), dict):
            raise EvalError(f"{where} has no key {json.dumps(top)}")
        if second not in m[top]:
            raise EvalError(f"{where}.{top} has no key {json.dumps(second)}")
        lookups.append(["Mappings", name, top, second])
        return m[top][second]

    def cond(c):
        if isinstance(c, str):
            if c not in conditions:
                raise EvalError(f"unknown condition {c}")
            return cond(conditions[c])
        if isinstance(c, dict) and len(c) == 1:
            (op, arg), = c.items()
            if op == "Condition":
                return cond(arg)
            if op == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                return str(val(arg[0])) == str(val(arg[1]))
            if op == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not cond(arg[0])
            if op == "Fn::And" and isinstance(arg, list):
                return all(cond(x) for x in arg)
            if op == "Fn::Or" and isinstance(arg, list):
                return any(cond(x) for x in arg)
        raise EvalError(f"cannot evaluate condition {short(c)}")

    def val(x):
        if isinstance(x, dict) and len(x) == 1:
            (op, arg), = x.items()
            if op == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE
            if op == "Ref" and isinstance(arg, str):
                if arg not in values:
                    raise EvalError(f"no value for {arg}")
                return values[arg]
            if op == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return val(arg[1] if cond(arg[0]) else arg[2])
            if op == "Fn::FindInMap":
                return find_in_map(arg)
            if op == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
                items = val(arg[1]) if isinstance(arg[1], dict) else [val(x) for x in as_list(arg[1])]
                if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                    raise EvalError(f"cannot join {short(arg[1])}")
                return arg[0].join(items)
        if isinstance(x, (dict, list)):
            raise EvalError(f"cannot evaluate {short(x)}")
        return x

    return val(v)


def cases(names: list, params: dict) -> Iterator[dict]:
    """Every combination of the AllowedValues of the named parameters, as {name: string}."""
    pools = [[str(a) for a in as_list(params[n].get("AllowedValues"))] for n in names]
    for combo in itertools.product(*pools):
        yield dict(zip(names, combo))


# ---------------------------------------------------------------- Go durations

_GO_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
             "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")
NS = 10**9


def parse_go_duration(text: str) -> int:
    """Nanoseconds, as Go's time.ParseDuration reads text ("336h", "1h30m", "1.5h", "-2m",
    "0"). Raises ValueError on anything else ("14d" is not Go syntax)."""
    s = str(text)
    body = s[1:] if s[:1] in ("-", "+") else s
    ns = 0
    if body != "0":
        if body == "":
            raise ValueError("empty")
        pos = 0
        while pos < len(body):
            m = _GO_PART.match(body, pos)
            if not m:
                raise ValueError(f"cannot read {json.dumps(body[pos:])}")
            num, unit = m.groups()
            if unit == "":
                raise ValueError(f"missing unit after {num}")
            if unit not in _GO_UNITS:
                raise ValueError(f"unknown unit {json.dumps(unit, ensure_ascii=False)} (Go knows ns, us, ms, s, m, h)")
            whole, _, frac = num.partition(".")
            scale = _GO_UNITS[unit]
            ns += int(whole or "0") * scale + int(frac or "0") * scale // 10 ** len(frac)
            pos = m.end()
    if ns > 2**63 - 1:
        raise ValueError("out of range")
    return -ns if s.startswith("-") else ns


def seconds(ns: int) -> str:
    """A duration in nanoseconds as "N s", with hours when whole ("1209600 s = 336h")."""
    s = ns // NS if ns % NS == 0 else ns / NS
    if ns != 0 and ns % (3600 * NS) == 0:
        return f"{s} s = {ns // (3600 * NS)}h"
    return f"{s} s"


# ---------------------------------------------------------------- IAM

_IDENTITY_WITH_POLICIES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
_IDENTITY_POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy",
                      "AWS::IAM::UserPolicy", "AWS::IAM::GroupPolicy")
_RESOURCE_POLICIES = ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy")


class Statement:
    """An Allow statement of a policy in the template. when lists the template conditions it
    exists under, as (condition name, True or False): its policy resource's Condition, and
    the Fn::If it is a branch of."""

    def __init__(self, s: dict, path: list, identity: bool, roles: list, when: list | None = None):
        self.s, self.path, self.identity, self.roles = s, path, identity, roles
        self.when = list(when or [])

    @property
    def actions(self) -> list:
        return as_list(self.s.get("Action"))

    @property
    def resources(self) -> list:
        return as_list(self.s.get("Resource"))

    def condition(self, key: str) -> tuple[str, list] | None:
        """(operator, values) of the statement's condition on key, whatever the operator."""
        c = self.s.get("Condition")
        for op, m in (c.items() if isinstance(c, dict) else []):
            for k, v in (m.items() if isinstance(m, dict) else []):
                if isinstance(k, str) and k.lower() == key.lower():
                    return op, as_list(v)
        return None


def allow_statements(cfn) -> list[Statement]:
    """The Allow statements of every policy in the template, those in a branch of an Fn::If
    included; identity ones know their roles, each knows the conditions it exists under."""
    docs = []
    for rid, r in (cfn.template.get("Resources") or {}).items():
        p, rtype = props(r), r.get("Type") if isinstance(r, dict) else None
        base = ["Resources", rid, "Properties"]
        when = [(r["Condition"], True)] if isinstance(r, dict) and isinstance(r.get("Condition"), str) else []
        if rtype in _IDENTITY_WITH_POLICIES:
            for i, pol in enumerate(as_list(p.get("Policies"))):
                if isinstance(pol, dict):
                    roles = [rid] if rtype == "AWS::IAM::Role" else []
                    docs.append((pol.get("PolicyDocument"), base + ["Policies", i, "PolicyDocument"], True, roles, when))
        elif rtype in _IDENTITY_POLICIES:
            roles = [ref_target(x) for x in as_list(p.get("Roles")) + as_list(p.get("RoleName"))]
            docs.append((p.get("PolicyDocument"), base + ["PolicyDocument"], True, [x for x in roles if x], when))
        elif rtype in _RESOURCE_POLICIES:
            docs.append((p.get("PolicyDocument"), base + ["PolicyDocument"], False, [], when))
    out = []

    def add(s, path, identity, roles, when):
        iff = s.get("Fn::If") if isinstance(s, dict) and len(s) == 1 else None
        if isinstance(iff, list) and len(iff) == 3 and isinstance(iff[0], str):
            for branch, holds in ((1, True), (2, False)):
                add(iff[branch], path + ["Fn::If", branch], identity, roles, when + [(iff[0], holds)])
        elif isinstance(s, dict) and s.get("Effect") == "Allow":
            out.append(Statement(s, path, identity, roles, when))

    for doc, path, identity, roles, when in docs:
        if not isinstance(doc, dict):
            continue
        stmts = doc.get("Statement")
        listed = isinstance(stmts, list)
        for i, s in enumerate(as_list(stmts)):
            add(s, path + (["Statement", i] if listed else ["Statement"]), identity, roles, when)
    return out


def covers(pattern: Any, action: str) -> bool:
    """True when the IAM action pattern (with * and ?) covers action."""
    if not isinstance(pattern, str):
        return False
    rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.strip().lower())
    return re.fullmatch(rx, action.lower()) is not None


def role_of(cfn, fn_id: str) -> str | None:
    """The logical id of the role a function runs as (Role: !GetAtt X.Arn)."""
    fn = resource(cfn, fn_id, FUNCTION)
    rid = ref_target(props(fn).get("Role")) if fn else None
    return rid if rid and same_ref(props(fn).get("Role"), rid, "Arn") else None
