"""slackrelay's IAM wildcards: none in actions; Resource "*" only where AWS leaves no choice.

Why ours: cfn-lint checks that policies are well formed (E3510, W3037, I3510) and that actions
exist, but accepts "*", "service:*", NotAction and Resource "*" for anything. This project
grants least privilege: no wildcard action, and Resource "*" (or NotResource) only for the
actions of WILDCARD_RESOURCE_ALLOWED, each with its reason.
"""

import os
import re
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:PARAMETER_ARN"

# Action -> (condition key it needs on Resource "*", or None; why "*").
WILDCARD_RESOURCE_ALLOWED = {
    "kms:decrypt": (ENCRYPTION_CONTEXT_KEY, "the key behind a SecureString (aws/ssm or a customer key) is not known here; the encryption context names the parameter"),
    "cloudwatch:putmetricdata": (None, "has no resource-level permissions"),
    "xray:puttracesegments": (None, "has no resource-level permissions"),
    "xray:puttelemetryrecords": (None, "has no resource-level permissions"),
}

_SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$", re.IGNORECASE)


class WildcardAction(CloudFormationLintRule):
    id = "E9040"
    shortdesc = "No IAM Allow with a wildcard action or NotAction"
    description = 'Allow statements name their actions: no "*", no "service:*", no NotAction'
    tags = ["slackrelay", "iam"]

    def match(self, cfn):
        out = []
        for st in sr.allow_statements(cfn):
            if "NotAction" in st.s:
                out.append(RuleMatch(st.path, "Allow with NotAction grants almost everything; list the actions"))
            for a in st.actions:
                if isinstance(a, str) and (a.strip() == "*" or _SERVICE_WILDCARD.match(a.strip())):
                    out.append(RuleMatch(st.path, f"Action {a} is a wildcard; list the actions the function calls"))
        return out


class WildcardResource(CloudFormationLintRule):
    id = "E9041"
    shortdesc = 'IAM Resource "*" only for actions without resource-level permissions'
    description = 'Resource "*" or NotResource only for ' + ", ".join(WILDCARD_RESOURCE_ALLOWED) + " (kms:Decrypt with a PARAMETER_ARN condition)"
    tags = ["slackrelay", "iam"]

    def match(self, cfn):
        out = []
        for st in sr.allow_statements(cfn):
            if "NotResource" in st.s:
                out.append(RuleMatch(st.path, "Allow with NotResource; name the resources"))
            if not st.identity or "*" not in st.resources:
                continue
            for a in st.actions:
                allowed = WILDCARD_RESOURCE_ALLOWED.get(a.lower()) if isinstance(a, str) else None
                if allowed is None:
                    out.append(RuleMatch(st.path, f'Resource "*" is not allowed for {a if isinstance(a, str) else sr.short(a)}; name the resources'))
                elif allowed[0] and st.condition(allowed[0]) is None:
                    out.append(RuleMatch(st.path, f'Resource "*" for {a} needs a {allowed[0]} condition'))
        return out
