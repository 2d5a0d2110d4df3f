"""slackrelay's model on Bedrock: the worker may invoke exactly the models the deployer listed,
and only when Bedrock is its provider.

Why ours: cfn-lint checks that bedrock:* actions exist and that an ARN looks like one, not
which models a role may invoke, nor that a grant exists only in the stacks that use it. Here
every Allow of a Bedrock action (any policy, Fn::If branches included) must:
  - belong to WorkerRole alone (the worker's model client is the only Bedrock caller);
  - grant bedrock:InvokeModelWithResponseStream only (what ConverseStream is authorized as;
    the worker calls nothing else);
  - be on exactly !Ref BedrockModelArns, whose AllowedPattern refuses wildcard ARNs (so
    neither the template nor a deployer can grant "*" or ".../*");
  - exist under conditions (its policy's Condition, the Fn::If it is in) that are false for
    every LLMProvider but bedrock and true for bedrock with BedrockModelArns set; they may
    read LLMProvider and BedrockModelArns only.
And when LLMProvider allows bedrock, WorkerRole has that grant, and the worker's LLM_PROVIDER
is !Ref LLMProvider (the value the condition reads). Wildcard actions ("*", "bedrock:*") are
E9040's too.
"""

import os
import re
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

PROVIDER = "LLMProvider"
ARNS = "BedrockModelArns"
BEDROCK = "bedrock"
INVOKE = "bedrock:InvokeModelWithResponseStream"
# Deployed values BedrockModelArns's AllowedPattern must refuse (CloudFormation matches it
# against each value of the list, whole).
WILDCARDS = ("*", "arn:aws:bedrock:*::foundation-model/*", "arn:aws:bedrock:us-east-1::foundation-model/*",
             "arn:aws:bedrock:us-east-1:123456789012:inference-profile/*", "arn:aws:bedrock:us-east-1::*")
# A value of it for evaluating conditions with the ARNs set.
SAMPLE = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"


def is_bedrock(action):
    return isinstance(action, str) and action.strip().lower().startswith("bedrock:")


def exists(st, tpl, provider, arns):
    """Whether statement st exists with LLMProvider=provider and BedrockModelArns=arns
    (raises sr.EvalError when its conditions read anything else)."""
    values = {PROVIDER: provider, ARNS: arns}
    return all(sr.evaluate({"Fn::If": [c, True, False]}, tpl, values) is holds for c, holds in st.when)


class BedrockModels(CloudFormationLintRule):
    id = "E9045"
    shortdesc = "Bedrock only for the worker, only its listed models, only when it is the provider"
    description = (
        f"{INVOKE} (and no other Bedrock action) only in WorkerRole, on exactly !Ref {ARNS} (a pattern without "
        f"wildcards), under conditions true exactly when {PROVIDER} is {BEDROCK}"
    )
    tags = ["slackrelay", "iam", "bedrock"]

    def match(self, cfn):
        out = []
        tpl, params = cfn.template, sr.parameters(cfn)
        role = sr.role_of(cfn, sr.WORKER)
        if not role:
            return out  # E9000 reports a missing WorkerFunction
        p = params.get(PROVIDER)
        providers = [str(a) for a in sr.as_list(p.get("AllowedValues"))] if isinstance(p, dict) else []
        stmts = [st for st in sr.allow_statements(cfn) if any(is_bedrock(a) for a in st.actions)]
        for st in stmts:
            out += self.owner(st, role)
            out += self.actions(st)
            out += self.resources(st)
            out += self.conditions(st, tpl, providers)
        if BEDROCK in providers or stmts:
            out += self.arn_parameter(params)
        if BEDROCK in providers:
            out += self.granted(cfn, tpl, role, stmts)
        return out

    def owner(self, st, role):
        if st.identity and st.roles == [role]:
            return []
        who = ", ".join(st.roles) if st.identity and st.roles else "a resource policy" if not st.identity else "a policy of no known role"
        return [RuleMatch(st.path, f"{who} gets Bedrock actions; only the worker's role ({role}) invokes a model")]

    def actions(self, st):
        return [RuleMatch(st.path, f"{a}: the worker calls ConverseStream only, authorized as {INVOKE}; grant no other Bedrock action")
                for a in st.actions if is_bedrock(a) and a.strip().lower() != INVOKE.lower()]

    def resources(self, st):
        want = {"Ref": ARNS}
        if "NotResource" in st.s:
            return [RuleMatch(st.path, f"Bedrock actions with NotResource; want Resource: !Ref {ARNS}")]
        res = st.s.get("Resource")
        if res is None:
            return [RuleMatch(st.path, f"Bedrock actions without a Resource; want Resource: !Ref {ARNS}")]
        return [RuleMatch(st.path, f"Bedrock actions on {sr.short(r)}: want exactly !Ref {ARNS}, the models the deployer listed")
                for r in sr.as_list(res) if r != want]

    def conditions(self, st, tpl, providers):
        others = [v for v in providers if v != BEDROCK]
        if not st.when:
            return [RuleMatch(st.path, (
                f"Bedrock actions without a condition: granted with {PROVIDER}={'/'.join(others) or 'anything'} too; put them "
                f"under a condition true exactly when {PROVIDER} is {BEDROCK}"))]
        if BEDROCK not in providers:
            return [RuleMatch(st.path, f"Bedrock actions, but {PROVIDER} has no AllowedValues with {BEDROCK}")]
        out = []
        names = ", ".join(f"{c}={h}" for c, h in st.when)
        try:
            for v in others:
                if any(exists(st, tpl, v, arns) for arns in ([""], [SAMPLE])):
                    out.append(RuleMatch(st.path, f"Bedrock actions granted with {PROVIDER}={v} (conditions {names}); tie them to {PROVIDER}={BEDROCK}"))
            if not exists(st, tpl, BEDROCK, [SAMPLE]):
                out.append(RuleMatch(st.path, f"Bedrock actions not granted with {PROVIDER}={BEDROCK} and {ARNS} set (conditions {names})"))
        except sr.EvalError as err:
            out.append(RuleMatch(st.path, f"cannot tell when the Bedrock actions are granted (conditions {names}): {err}; let the conditions read {PROVIDER} and {ARNS} only"))
        return out

    def arn_parameter(self, params):
        p = params.get(ARNS)
        if not isinstance(p, dict):
            return [RuleMatch(["Parameters"], f"no parameter {ARNS} (CommaDelimitedList of the model and inference-profile ARNs the worker may invoke)")]
        path = ["Parameters", ARNS]
        out = []
        if p.get("Type") != "CommaDelimitedList":
            out.append(RuleMatch(path + ["Type"], f"{ARNS} is {sr.short(p.get('Type'))}; want CommaDelimitedList (a model, or a profile and its models)"))
        pattern = p.get("AllowedPattern")
        if not isinstance(pattern, str):
            return out + [RuleMatch(path, f"{ARNS} has no AllowedPattern: a deployer could grant \"*\"; refuse wildcard ARNs")]
        try:
            rx = re.compile(pattern)
        except re.error as err:
            return out + [RuleMatch(path + ["AllowedPattern"], f"{ARNS} AllowedPattern does not compile: {err}")]
        admitted = [w for w in WILDCARDS if rx.fullmatch(w)]
        if admitted:
            out.append(RuleMatch(path + ["AllowedPattern"], f"{ARNS} AllowedPattern admits {admitted[0]!r}; refuse wildcard ARNs"))
        return out

    def granted(self, cfn, tpl, role, stmts):
        out = []
        v = sr.env_vars(sr.resource(cfn, sr.WORKER, sr.FUNCTION)).get("LLM_PROVIDER")
        if v is not None and v != {"Ref": PROVIDER}:
            out.append(RuleMatch(["Resources", sr.WORKER, "Properties", "Environment", "Variables", "LLM_PROVIDER"],
                                 f"LLM_PROVIDER is {sr.short(v)}; want !Ref {PROVIDER}, which the grant's condition reads"))

        def grants(st):
            try:
                return st.roles == [role] and any(sr.covers(a, INVOKE) for a in st.actions) and exists(st, tpl, BEDROCK, [SAMPLE])
            except sr.EvalError:
                return False
        if not any(grants(st) for st in stmts):
            out.append(RuleMatch(["Resources", role], (
                f"{role} has no {INVOKE} granted with {PROVIDER}={BEDROCK}: the worker could not call its model; "
                f"grant it on !Ref {ARNS} under a condition on {PROVIDER}")))
        return out
