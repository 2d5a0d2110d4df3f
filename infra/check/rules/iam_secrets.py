"""slackrelay's secret access: each function's role reads and decrypts exactly the SSM
parameters the function reads.

Why ours: cfn-lint cannot connect a role to what its function does. Here the function's
environment says it: the variables named *_PARAM hold SSM parameter names. Its role's
ssm:GetParameter* must name exactly those parameters' ARNs, and its kms:Decrypt must be limited
by the condition kms:EncryptionContext:PARAMETER_ARN (StringEquals) to exactly the same ARNs:
SSM decrypts a SecureString with the parameter's ARN as encryption context, so no other
SecureString in the account can be decrypted. A parameter read only under a condition
(!If [HasLlm, !Ref LlmApiKeyParam, ""]) must be granted under the same condition.
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:PARAMETER_ARN"
ARN_PREFIX = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
SSM_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory")


def arn_key(e):
    """Names a parameter ARN of a policy: "param:P" for the ARN of template parameter P,
    "name:/x" for a literal name, with "?Cond" when wrapped in !If [Cond, arn, AWS::NoValue].
    None for anything else (a wildcard, another form of ARN)."""
    iff = e.get("Fn::If") if isinstance(e, dict) else None
    if isinstance(iff, list) and len(iff) == 3 and iff[2] == {"Ref": "AWS::NoValue"}:
        k = arn_key(iff[1])
        return k and f"{k}?{iff[0]}"
    sub = e.get("Fn::Sub") if isinstance(e, dict) else None
    if not isinstance(sub, str) or not sub.startswith(ARN_PREFIX):
        return None
    rest = sub[len(ARN_PREFIX):]
    if rest.startswith("${") and rest.endswith("}") and rest[2:-1].isalnum():
        return f"param:{rest[2:-1]}"
    ok = rest.startswith("/") and all(c.isalnum() or c in "_.-/" for c in rest)
    return f"name:{rest}" if ok else None


def read_parameters(cfn, fid):
    """(keys of the SSM parameters function fid reads, [(variable, value) it cannot tell])."""
    params = sr.parameters(cfn)

    def one(x):
        if isinstance(x, dict) and x.get("Ref") in params:
            return f"param:{x['Ref']}"
        return f"name:{x}" if isinstance(x, str) and x.startswith("/") else None

    keys, unknown = set(), []
    for name, v in sr.env_vars(sr.resource(cfn, fid, sr.FUNCTION)).items():
        if not name.endswith("_PARAM") or v == "":
            continue
        iff = v.get("Fn::If") if isinstance(v, dict) else None
        if isinstance(iff, list) and len(iff) == 3 and iff[2] in ("", {"Ref": "AWS::NoValue"}) and one(iff[1]):
            keys.add(f"{one(iff[1])}?{iff[0]}")
        elif one(v):
            keys.add(one(v))
        else:
            unknown.append((name, v))
    return keys, unknown


def functions(cfn):
    """[(function id, role id, the role's Allow statements)] of the two functions."""
    out = []
    for fid in (sr.RECEIVER, sr.WORKER):
        rid = sr.role_of(cfn, fid)
        if rid:
            out.append((fid, rid, [st for st in sr.allow_statements(cfn) if rid in st.roles]))
    return out


def compare(fid, rid, what, got, want):
    path = ["Resources", rid]
    return [RuleMatch(path, f"{rid}'s {what} lacks {k}, which {fid} reads") for k in sorted(want - got)] + [
        RuleMatch(path, f"{rid}'s {what} grants {k}, which {fid} does not read") for k in sorted(got - want)
    ]


class SsmRead(CloudFormationLintRule):
    id = "E9042"
    shortdesc = "Each function's role reads exactly the SSM parameters the function reads"
    description = "ssm:GetParameter* on exactly the ARNs of the parameters its *_PARAM variables name"
    tags = ["slackrelay", "iam", "ssm"]

    def match(self, cfn):
        out = []
        for fid, rid, stmts in functions(cfn):
            want, unknown = read_parameters(cfn, fid)
            for name, v in unknown:
                out.append(RuleMatch(["Resources", fid, "Properties", "Environment", "Variables", name],
                                     f"cannot tell which SSM parameter {fid} {name} names: {sr.short(v)}; use !Ref Param or a literal /name"))
            got = set()
            for st in stmts:
                if not any(sr.covers(a, r) for a in st.actions for r in SSM_READS):
                    continue
                for r in st.resources:
                    k = arn_key(r)
                    if k:
                        got.add(k)
                    else:
                        out.append(RuleMatch(st.path, f"ssm:GetParameter* on {sr.short(r)}: want the exact ARN of a parameter {fid} reads"))
            out += compare(fid, rid, "ssm:GetParameter*", got, want)
        return out


class KmsDecrypt(CloudFormationLintRule):
    id = "E9043"
    shortdesc = "Each function's role decrypts exactly the SSM parameters the function reads"
    description = "kms:Decrypt under StringEquals kms:EncryptionContext:PARAMETER_ARN with exactly the ARNs of its parameters"
    tags = ["slackrelay", "iam", "kms"]

    def match(self, cfn):
        out = []
        for fid, rid, stmts in functions(cfn):
            want, _ = read_parameters(cfn, fid)
            got = set()
            for st in stmts:
                if not any(sr.covers(a, "kms:Decrypt") for a in st.actions):
                    continue
                c = st.condition(ENCRYPTION_CONTEXT_KEY)
                if c is None:
                    out.append(RuleMatch(st.path, f"kms:Decrypt without a {ENCRYPTION_CONTEXT_KEY} condition decrypts more than {fid}'s parameters"))
                    continue
                op, values = c
                if op != "StringEquals":
                    out.append(RuleMatch(st.path, f"{ENCRYPTION_CONTEXT_KEY} under {op}; use StringEquals"))
                for v in values:
                    k = arn_key(v)
                    if k:
                        got.add(k)
                    else:
                        out.append(RuleMatch(st.path, f"{ENCRYPTION_CONTEXT_KEY} value {sr.short(v)}: want the exact ARN of a parameter {fid} reads"))
            out += compare(fid, rid, "kms:Decrypt", got, want)
        return out
