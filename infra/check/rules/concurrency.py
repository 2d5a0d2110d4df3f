"""slackrelay's receiver concurrency: reserved only when asked for, and never 0.

Why ours: cfn-lint accepts any ReservedConcurrentExecutions of 0 or more. For the receiver, 0
would throttle every Slack request, and reserving by default would take concurrency from the
account without being asked. The value comes from one parameter through a condition, so this
rule evaluates it for the parameter's default, empty, and each spelling of zero the parameter
admits.
"""

import json
import os
import re
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402


def candidates(p):
    """Values of a parameter worth trying: its default, empty and the spellings of zero it admits."""
    tries = dict.fromkeys(["", "0", "00", "1"] + ([str(p["Default"])] if p.get("Default") is not None else []))

    def admits(v):
        if isinstance(p.get("AllowedValues"), list):
            return v in [str(a) for a in p["AllowedValues"]]
        if p.get("Type") == "Number":
            n = sr.number(v)
            if n is None:
                return False
            if sr.number(p.get("MinValue")) is not None and n < sr.number(p["MinValue"]):
                return False
            if sr.number(p.get("MaxValue")) is not None and n > sr.number(p["MaxValue"]):
                return False
        return p.get("AllowedPattern") is None or re.search(str(p["AllowedPattern"]), v) is not None

    return [v for v in tries if admits(v)]


class ReceiverConcurrency(CloudFormationLintRule):
    id = "E9035"
    shortdesc = "The receiver's reserved concurrency: from a parameter, unreserved by default, never 0"
    description = (
        "ReceiverFunction ReservedConcurrentExecutions is !If [Condition, !Ref Param, !Ref AWS::NoValue] "
        "or the like: AWS::NoValue at the parameter's default, else a positive integer"
    )
    tags = ["slackrelay", "lambda"]

    def match(self, cfn):
        fn = sr.resource(cfn, sr.RECEIVER, sr.FUNCTION)
        if fn is None:
            return []
        params = sr.parameters(cfn)
        path = ["Resources", sr.RECEIVER, "Properties", "ReservedConcurrentExecutions"]
        v = sr.props(fn).get("ReservedConcurrentExecutions")
        refs = sorted(sr.parameter_refs(v, params))
        if v is None or len(refs) != 1:
            got = "nothing" if v is None else sr.short(v)
            return [RuleMatch(path, (
                f"{sr.RECEIVER} ReservedConcurrentExecutions is {got}; want it from one parameter, unreserved by default "
                "(!If [Condition, !Ref Param, !Ref AWS::NoValue])"))]
        name, out = refs[0], []
        p = params[name]
        default = str(p.get("Default", ""))
        for value in candidates(p):
            try:
                got = sr.evaluate(v, cfn.template, {name: value})
            except sr.EvalError as err:
                out.append(RuleMatch(path, f"{sr.RECEIVER} ReservedConcurrentExecutions with {name}={json.dumps(value)}: {err}"))
                continue
            if value == default and got is not sr.NO_VALUE:
                out.append(RuleMatch(path, (
                    f"with {name} at its default {json.dumps(value)} {sr.RECEIVER} is reserved {sr.short(got)}; "
                    "want unreserved (AWS::NoValue) unless asked for")))
            elif got is not sr.NO_VALUE and not (re.fullmatch(r"\d+", str(got)) and int(got) > 0):
                out.append(RuleMatch(path, (
                    f"{name}={json.dumps(value)} gives {sr.RECEIVER} ReservedConcurrentExecutions {sr.short(got)}; "
                    "want AWS::NoValue or a positive integer (0 would throttle every Slack request)")))
        return out
