"""Tests of slackrelay's cfn-lint rules (infra/check/rules) and of cfn-lint.sh.

The real infra/template.yaml has no findings; each rule fires on a mutation of it, and on the
first mutation named after it (test_E90xx_...) it is the only rule of cfn-lint's and ours that
fires. A rule without such a test fails test_every_rule_has_a_failing_template.

    cd infra/check && python3 -m unittest        (make test-infra runs it)
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.rules import Rules
from cfnlint.runner import Runner, run_template_by_data

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "rules")
TEMPLATE = os.path.join(HERE, "..", "template.yaml")
SCRIPT = os.path.join(HERE, "cfn-lint.sh")

sys.path.insert(0, RULES)
import _slackrelay as sr  # noqa: E402

with open(TEMPLATE, encoding="utf-8") as f:
    TEXT = f.read()
BASE = json.loads(json.dumps(decode_str(TEXT)[0]))

_runners = {}
OURS = ("E9", "W9", "I9")


def runner(ours_only=False, **configure_rules):
    """(config, rules): cfn-lint's rules (informational ones included) and ours, or only ours
    (and E0002, a rule that raised) when ours_only. Loaded once per set-up."""
    key = (ours_only, json.dumps(configure_rules, sort_keys=True))
    if key not in _runners:
        config = ConfigMixIn(append_rules=[RULES], include_checks=["I"], configure_rules=configure_rules)
        rules = Runner(config).rules
        if ours_only:
            rules = Rules({k: v for k, v in rules.data.items() if k.startswith(OURS) or k == "E0002"})
        _runners[key] = (config, rules)
    return _runners[key]


def lint(text, ours_only=False, **configure_rules):
    """[(rule id, path, message)] on a template text (see runner)."""
    config, rules = runner(ours_only, **configure_rules)
    decoded, errors = decode_str(text)
    matches = errors or list(run_template_by_data(decoded, config, rules))
    return [(m.rule.id, "/".join(map(str, getattr(m, "path", []))), m.message) for m in matches]


def mutated(mutate):
    """The real template changed by mutate(template), as (JSON) text."""
    t = copy.deepcopy(BASE)
    mutate(t)
    return json.dumps(t)


def edited(*pairs):
    """The template text with each (regex, replacement) applied; each must match."""
    text = TEXT
    for pattern, repl in pairs:
        text, n = re.subn(pattern, repl, text)
        assert n, f"the template no longer matches {pattern!r}"
    return text


def R(t, rid):
    return t["Resources"][rid]["Properties"]


def stmt(t, role, sid):
    return next(s for s in R(t, role)["Policies"][0]["PolicyDocument"]["Statement"] if s.get("Sid") == sid)


def ssm_arn(param):
    return {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${%s}" % param}


CONTEXT_KEY = "kms:EncryptionContext:PARAMETER_ARN"


def show(findings):
    return "\n".join(f"{r} {p}: {m}" for r, p, m in findings) or "(none)"


class Case(unittest.TestCase):
    def assertOnly(self, text, rule, *parts, **configure_rules):
        """On the template text rule fires and no other rule, cfn-lint's or ours; one of its
        findings holds each of parts (in "path: message"). Returns the findings."""
        findings = lint(text, **configure_rules)
        self.assertEqual({r for r, _, _ in findings}, {rule}, f"want only {rule}, got:\n{show(findings)}")
        return self.assertHas(findings, rule, *parts)

    def assertHas(self, text_or_findings, rule, *parts):
        """rule fires with a finding holding each of parts (our rules only, on a text)."""
        findings = lint(text_or_findings, ours_only=True) if isinstance(text_or_findings, str) else text_or_findings
        hit = any(r == rule and all(x in f"{p}: {m}" for x in parts) for r, p, m in findings)
        self.assertTrue(hit, f"want {rule} with {parts}, got:\n{show(findings)}")
        return findings

    def assertClean(self, text):
        findings = lint(text)
        self.assertEqual(findings, [], show(findings))


class RealTemplate(Case):
    def test_no_findings(self):
        self.assertClean(TEXT)

    def test_every_rule_has_a_failing_template(self):
        ours = {rid for rid in runner(ours_only=True)[1].data if rid.startswith(OURS)}
        tested = set()
        for case in (c for c in globals().values() if isinstance(c, type) and issubclass(c, unittest.TestCase)):
            tested |= {m.split("_")[1] for m in dir(case) if re.match(r"test_[EWI]9\d{3}_", m)}
        self.assertGreaterEqual(len(ours), 20, "the rules did not load")
        self.assertEqual(sorted(ours - tested), [], "rules without a test_<id>_ failing template")
        self.assertEqual(sorted(tested - ours), [], "tests for rules that do not exist")


class Stack(Case):
    def test_E9000_a_function_under_another_id(self):
        self.assertOnly(edited((r"\bWorkerFunction\b", "Worker")), "E9000", "Resources.WorkerFunction (AWS::Lambda::Function) not found")

    def test_E9001_transform(self):
        self.assertOnly(mutated(lambda t: t.update(Transform="AWS::LanguageExtensions")), "E9001", "Transform")

    def test_E9002_built_for_x86(self):
        self.assertOnly(mutated(lambda t: R(t, "ReceiverFunction").update(Architectures=["x86_64"])),
                        "E9002", "ReceiverFunction/Properties/Architectures", "want [arm64]")

    def test_E9003_route_missing(self):
        self.assertOnly(mutated(lambda t: t["Resources"].pop("InteractivityRoute")), "E9003", "POST /slack/interactivity")

    def test_E9004_output_missing(self):
        self.assertOnly(mutated(lambda t: t["Outputs"].pop("DeadLetterQueueUrl")), "E9004", "no output DeadLetterQueueUrl; slackrelay-dlq")


class Queues(Case):
    def test_E9010_no_redrive(self):
        self.assertOnly(mutated(lambda t: R(t, "EventsQueue").pop("RedrivePolicy")), "E9010", "EventsQueue/Properties/RedrivePolicy", "no RedrivePolicy")

    def test_redrive_without_max_receive_count(self):
        self.assertOnly(mutated(lambda t: R(t, "EventsQueue")["RedrivePolicy"].pop("maxReceiveCount")), "E9010", "no maxReceiveCount")

    def test_redrive_to_another_queue(self):
        def m(t):
            t["Resources"]["OtherQueue"] = copy.deepcopy(t["Resources"]["DeadLetterQueue"])
            R(t, "OtherQueue")["QueueName"] = {"Fn::Sub": "${AWS::StackName}-other"}
            R(t, "EventsQueue")["RedrivePolicy"]["deadLetterTargetArn"] = {"Fn::GetAtt": ["OtherQueue", "Arn"]}
        self.assertHas(mutated(m), "E9010", "deadLetterTargetArn", "want !GetAtt DeadLetterQueue.Arn")

    def test_E9011_max_receive_count_differs(self):
        self.assertOnly(mutated(lambda t: R(t, "WorkerFunction")["Environment"]["Variables"].update(MAX_RECEIVE_COUNT="3")),
                        "E9011", "Variables/MAX_RECEIVE_COUNT", '"3" differs from EventsQueue RedrivePolicy maxReceiveCount {"Ref": "MaxReceiveCount"}')

    def test_E9012_message_size(self):
        def m(t):
            R(t, "EventsQueue").pop("MaximumMessageSize")
            R(t, "DeadLetterQueue")["MaximumMessageSize"] = 262144
        f = self.assertOnly(mutated(m), "E9012", "EventsQueue/Properties/MaximumMessageSize", "is not set")
        self.assertHas(f, "E9012", "DeadLetterQueue/Properties/MaximumMessageSize", "is 262144")

    def test_E9013_queue_not_retained(self):
        def m(t):
            t["Resources"]["EventsQueue"]["DeletionPolicy"] = "Delete"
            t["Resources"]["DeadLetterQueue"]["UpdateReplacePolicy"] = "Delete"
        f = self.assertOnly(mutated(m), "E9013", "EventsQueue/DeletionPolicy", '"Delete"; set Retain')
        self.assertHas(f, "E9013", "DeadLetterQueue/UpdateReplacePolicy", "is \"Delete\"")
        self.assertEqual(len(f), 2, f)
        f = mutated(lambda t: t["Resources"]["DeadLetterQueue"].pop("UpdateReplacePolicy"))
        self.assertHas(f, "E9013", "DeadLetterQueue/UpdateReplacePolicy", "not set (Delete)")

    def test_E9014_dlq_retention_7_days(self):
        def m(t):
            R(t, "DeadLetterQueue")["MessageRetentionPeriod"] = 604800  # with the worker told so (E9030)
            R(t, "WorkerFunction")["Environment"]["Variables"].update(DLQ_RETENTION="168h", IDEMPOTENCY_TTL="192h")
        self.assertOnly(mutated(m), "E9014", "DeadLetterQueue/Properties/MessageRetentionPeriod", "is 604800 s; set 1209600")

    def test_dlq_retention_not_above_the_events_queue(self):
        f = mutated(lambda t: R(t, "EventsQueue").update(MessageRetentionPeriod=1209600))
        self.assertOnly(f, "E9014", "1209600 s must exceed EventsQueue's 1209600 s")


class EventSource(Case):
    def test_E9020_event_source_from_the_dlq(self):
        f = mutated(lambda t: R(t, "WorkerEventSource").update(EventSourceArn={"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}))
        self.assertOnly(f, "E9020", "WorkerEventSource/Properties/EventSourceArn", "set !GetAtt EventsQueue.Arn")

    def test_no_event_source_for_the_worker(self):
        f = mutated(lambda t: R(t, "WorkerEventSource").update(FunctionName={"Ref": "ReceiverFunction"}))
        self.assertHas(f, "E9020", "no AWS::Lambda::EventSourceMapping invokes WorkerFunction")

    def test_E9021_no_report_batch_item_failures(self):
        f = mutated(lambda t: R(t, "WorkerEventSource").pop("FunctionResponseTypes"))
        self.assertOnly(f, "E9021", "WorkerEventSource/Properties/FunctionResponseTypes")

    def test_E9022_a_mapping_entry_below_6x(self):
        f = mutated(lambda t: t["Mappings"]["WorkerTimeouts"]["600"].update(EventsQueueVisibilityTimeout=3000))
        f = self.assertOnly(f, "E9022", "Mappings/WorkerTimeouts/600/EventsQueueVisibilityTimeout",
                        "VisibilityTimeout 3000 s < 6 x worker Timeout 600 s = 3600 s, with WorkerTimeoutSeconds=600")
        self.assertEqual(len(f), 1, f)

    def test_an_allowed_timeout_missing_from_the_mapping(self):
        f = mutated(lambda t: t["Parameters"]["WorkerTimeoutSeconds"]["AllowedValues"].append(450))
        self.assertOnly(f, "E9022", "EventsQueue/Properties/VisibilityTimeout", 'WorkerTimeoutSeconds=450: Mappings.WorkerTimeouts has no key "450"')
        f = mutated(lambda t: t["Mappings"]["WorkerTimeouts"].update({"900": {"VisibilityTimeout": 5400}}))
        self.assertHas(f, "E9022", 'Mappings.WorkerTimeouts.900 has no key "EventsQueueVisibilityTimeout"')

    def test_a_literal_visibility_too_small_for_the_larger_timeouts(self):
        f = lint(mutated(lambda t: R(t, "EventsQueue").update(VisibilityTimeout=720)), ours_only=True)
        for timeout, want in ((300, 1800), (600, 3600), (900, 5400)):
            self.assertHas(f, "E9022", f"VisibilityTimeout 720 s < 6 x worker Timeout {timeout} s = {want} s, with WorkerTimeoutSeconds={timeout}")
        self.assertEqual(len([x for x in f if x[0] == "E9022"]), 3, f)

    def test_a_timeout_parameter_with_a_range(self):
        def ranged(maximum):
            def m(t):
                p = t["Parameters"]["WorkerTimeoutSeconds"]
                p.pop("AllowedValues")
                p.update(MinValue=10, **({} if maximum is None else {"MaxValue": maximum}))
                R(t, "EventsQueue")["VisibilityTimeout"] = 720
            return m
        self.assertEqual(lint(mutated(ranged(120)), ours_only=True), [])  # (the mapping unused: W7001)
        self.assertHas(mutated(ranged(900)), "E9022", "worker Timeout 900 s (parameter WorkerTimeoutSeconds MaxValue) = 5400 s")
        self.assertHas(mutated(ranged(None)), "E9022", "WorkerFunction/Properties/Timeout", "has no MaxValue")

    def test_a_mapping_looked_up_by_a_parameter_without_allowed_values(self):
        def m(t):
            p = t["Parameters"]["WorkerTimeoutSeconds"]
            p.pop("AllowedValues")
            p.update(MinValue=30, MaxValue=900)
        self.assertHas(mutated(m), "E9022", "parameter WorkerTimeoutSeconds, which has no AllowedValues")

    def test_a_batching_window_counts_in_every_entry(self):
        f = mutated(lambda t: R(t, "WorkerEventSource").update(MaximumBatchingWindowInSeconds=5))
        f = self.assertHas(f, "E9022", "Mappings/WorkerTimeouts/120/EventsQueueVisibilityTimeout", "batching window 5 s = 725 s")
        self.assertEqual(len([x for x in f if x[0] == "E9022"]), 6, f)


def set_env(**values):
    return lambda t: R(t, "WorkerFunction")["Environment"]["Variables"].update(values)


class RecordRetention(Case):
    def test_E9030_idempotency_ttl_too_short(self):
        self.assertOnly(mutated(set_env(IDEMPOTENCY_TTL="336h")), "E9030", "Variables/IDEMPOTENCY_TTL",
                        "IDEMPOTENCY_TTL 336h (1209600 s = 336h) < DLQ_RETENTION 336h + REPLAY_WINDOW 24h (1296000 s = 360h)")
        self.assertHas(mutated(set_env(REPLAY_WINDOW="24h1s")), "E9030", "(1296001 s)")

    def test_dlq_retention_differs_from_the_dlq(self):
        self.assertOnly(mutated(set_env(DLQ_RETENTION="168h", IDEMPOTENCY_TTL="192h")), "E9030", "Variables/DLQ_RETENTION",
                        "DLQ_RETENTION 168h (604800 s = 168h) differs from DeadLetterQueue MessageRetentionPeriod 1209600 s = 336h")

    def test_the_same_durations_written_otherwise_pass(self):
        self.assertClean(mutated(set_env(DLQ_RETENTION="1209600s", REPLAY_WINDOW="1440m", IDEMPOTENCY_TTL="359h60m")))

    def test_durations_that_are_not_go(self):
        f = lint(mutated(set_env(DLQ_RETENTION="14d", REPLAY_WINDOW="24", IDEMPOTENCY_TTL={"Ref": "Stage"})), ours_only=True)
        self.assertHas(f, "E9030", "Variables/DLQ_RETENTION", '"14d" is not a Go duration: unknown unit "d"')
        self.assertHas(f, "E9030", "Variables/REPLAY_WINDOW", '"24" is not a Go duration: missing unit')
        self.assertHas(f, "E9030", "Variables/IDEMPOTENCY_TTL", 'IDEMPOTENCY_TTL is {"Ref": "Stage"}')

    def test_parse_go_duration(self):
        h = 3600 * 10**9
        for text, want in (("336h", 336 * h), ("1h30m", 90 * 60 * 10**9), ("1.5h", 3 * h // 2), ("-2m", -120 * 10**9),
                           ("+5s", 5 * 10**9), (".5s", 5 * 10**8), ("0", 0), ("300ms", 300 * 10**6), ("1us", 1000),
                           ("1\u00b5s", 1000), ("1h0m0s", h)):
            self.assertEqual(sr.parse_go_duration(text), want, text)
        for text, err in (("14d", 'unknown unit "d"'), ("", "empty"), ("5", "missing unit"), ("h", "cannot read"),
                          ("1.2.3h", "missing unit"), ("5 s", "unknown unit"), ("2562048h", "out of range")):
            with self.assertRaisesRegex(ValueError, re.escape(err), msg=repr(text)):
                sr.parse_go_duration(text)


class ReceiverConcurrency(Case):
    PATH = "ReceiverFunction/Properties/ReservedConcurrentExecutions"

    def test_E9035_reserved_by_default(self):
        f = mutated(lambda t: t["Parameters"]["ReceiverReservedConcurrency"].update(Default="20"))
        self.assertOnly(f, "E9035", self.PATH, 'at its default "20"')

    def test_no_reserved_concurrency_parameter(self):
        self.assertHas(mutated(lambda t: R(t, "ReceiverFunction").pop("ReservedConcurrentExecutions")), "E9035", "is nothing")

    def test_a_condition_that_lets_0_through(self):
        f = mutated(lambda t: t["Conditions"].update(HasReceiverReservedConcurrency={"Fn::Not": [{"Fn::Equals": [{"Ref": "ReceiverReservedConcurrency"}, ""]}]}))
        self.assertOnly(f, "E9035", 'ReceiverReservedConcurrency="0" gives ReceiverFunction ReservedConcurrentExecutions "0"')

    def test_a_pattern_that_admits_a_zero_the_condition_does_not_see(self):
        f = mutated(lambda t: t["Parameters"]["ReceiverReservedConcurrency"].update(AllowedPattern="^[0-9]*$"))
        self.assertOnly(f, "E9035", '"00" gives ReceiverFunction ReservedConcurrentExecutions "00"')


class Iam(Case):
    def test_E9040_wildcard_action(self):
        f = mutated(lambda t: stmt(t, "WorkerRole", "ConsumeEvents").update(Action="sqs:*"))
        self.assertOnly(f, "E9040", "WorkerRole/Properties/Policies/0/PolicyDocument/Statement/1", "Action sqs:* is a wildcard")

    def test_not_action(self):
        def m(t):
            s = stmt(t, "WorkerRole", "DeadLetter")
            s["NotAction"] = s.pop("Action")
        self.assertHas(mutated(m), "E9040", "WorkerRole/Properties/Policies/0/PolicyDocument/Statement/2", "NotAction")

    def test_E9041_wildcard_resource(self):
        f = mutated(lambda t: stmt(t, "WorkerRole", "Idempotency").update(Resource="*"))
        self.assertOnly(f, "E9041", "WorkerRole", 'Resource "*" is not allowed for dynamodb:GetItem')

    def test_wildcards_in_a_standalone_policy(self):
        def m(t):
            t["Resources"]["ExtraPolicy"] = {"Type": "AWS::IAM::Policy", "Properties": {
                "PolicyName": "extra", "Roles": [{"Ref": "WorkerRole"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}}}
        self.assertHas(mutated(m), "E9041", "ExtraPolicy/Properties/PolicyDocument/Statement", "s3:GetObject")

    def test_kms_decrypt_on_star_with_only_via_service(self):
        f = mutated(lambda t: stmt(t, "ReceiverRole", "DecryptSecrets")["Condition"]["StringEquals"].pop(CONTEXT_KEY))
        self.assertHas(f, "E9041", "ReceiverRole", f"needs a {CONTEXT_KEY} condition")
        self.assertHas(f, "E9043", "ReceiverRole", f"without a {CONTEXT_KEY} condition")

    def test_E9042_the_llm_key_read_without_an_llm(self):
        f = mutated(lambda t: stmt(t, "WorkerRole", "Secrets").update(Resource=[ssm_arn("BotTokenParam"), ssm_arn("LlmApiKeyParam")]))
        self.assertOnly(f, "E9042", "Resources/WorkerRole", "grants param:LlmApiKeyParam, which WorkerFunction does not read")
        self.assertHas(f, "E9042", "lacks param:LlmApiKeyParam?HasLlm")

    def test_a_parameter_arn_with_a_wildcard(self):
        f = mutated(lambda t: stmt(t, "ReceiverRole", "Secrets").update(
            Resource={"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/slackrelay/*"}))
        self.assertHas(f, "E9042", "ReceiverRole", "want the exact ARN")

    def test_a_param_variable_that_cannot_be_told(self):
        f = mutated(lambda t: R(t, "ReceiverFunction")["Environment"]["Variables"].update(SIGNING_SECRET_PARAM={"Fn::Join": ["", ["/x/", {"Ref": "Stage"}]]}))
        self.assertHas(f, "E9042", "SIGNING_SECRET_PARAM", "cannot tell which SSM parameter")

    def test_E9043_decrypt_for_a_parameter_the_function_does_not_read(self):
        f = mutated(lambda t: stmt(t, "ReceiverRole", "DecryptSecrets")["Condition"]["StringEquals"].update(
            {CONTEXT_KEY: [ssm_arn("SigningSecretParam"), ssm_arn("BotTokenParam")]}))
        self.assertOnly(f, "E9043", "Resources/ReceiverRole", "grants param:BotTokenParam")

    def test_decrypt_missing_a_parameter_or_under_string_like(self):
        f = mutated(lambda t: stmt(t, "WorkerRole", "DecryptSecrets")["Condition"]["StringEquals"].update({CONTEXT_KEY: [ssm_arn("BotTokenParam")]}))
        self.assertHas(f, "E9043", "WorkerRole", "lacks param:LlmApiKeyParam?HasLlm")
        f = mutated(lambda t: stmt(t, "WorkerRole", "DecryptSecrets").update(Condition={"StringLike": {
            CONTEXT_KEY: {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/slackrelay/*"}}}))
        self.assertHas(f, "E9043", "WorkerRole", "under StringLike; use StringEquals")
        self.assertHas(f, "E9043", "WorkerRole", "want the exact ARN")

    def test_decrypt_on_a_key_arn_still_needs_the_condition(self):
        def m(t):
            s = stmt(t, "WorkerRole", "DecryptSecrets")
            s["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
            s.pop("Condition")
        self.assertHas(mutated(m), "E9043", "WorkerRole/Properties/Policies/0/PolicyDocument/Statement/6", "decrypts more than WorkerFunction")

    def test_E9044_send_to_a_queue_the_function_does_not_name(self):
        f = mutated(lambda t: stmt(t, "ReceiverRole", "Enqueue").update(
            Resource=[{"Fn::GetAtt": ["EventsQueue", "Arn"]}, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}]))
        self.assertOnly(f, "E9044", "ReceiverRole/Properties/Policies/0/PolicyDocument/Statement/1",
                        'on {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}: ReceiverFunction may send only to the queues its environment names (EventsQueue)')

    def test_send_on_star_or_through_a_pattern(self):
        f = mutated(lambda t: stmt(t, "WorkerRole", "Continue").update(Resource="*"))
        self.assertHas(f, "E9041", "WorkerRole", "sqs:SendMessage")
        self.assertHas(f, "E9044", "WorkerRole", 'on "*": WorkerFunction may send only to the queues its environment names (EventsQueue, DeadLetterQueue)')

        def m(t):
            s = stmt(t, "WorkerRole", "ConsumeEvents")
            s["Action"] = s["Action"] + ["sqs:Send*"]
            s["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*"}
        self.assertHas(mutated(m), "E9044", "WorkerRole", 'sqs:Send* on {"Fn::Sub"')


MODEL = "WorkerModelPolicy/Properties/PolicyDocument/Statement/0"


def model(t):
    return R(t, "WorkerModelPolicy")["PolicyDocument"]["Statement"][0]


class Bedrock(Case):
    def test_E9045_a_wildcard_model_arn(self):
        f = mutated(lambda t: model(t).update(Resource="arn:aws:bedrock:*::foundation-model/*"))
        self.assertOnly(f, "E9045", MODEL, 'on "arn:aws:bedrock:*::foundation-model/*": want exactly !Ref BedrockModelArns')

    def test_bedrock_on_star(self):
        f = lint(mutated(lambda t: model(t).update(Resource="*")), ours_only=True)
        self.assertHas(f, "E9045", MODEL, 'on "*": want exactly !Ref BedrockModelArns')
        self.assertHas(f, "E9041", MODEL, 'Resource "*" is not allowed for bedrock:InvokeModelWithResponseStream')

    def test_another_bedrock_action(self):
        f = mutated(lambda t: model(t).update(Action=["bedrock:InvokeModelWithResponseStream", "bedrock:InvokeModel"]))
        self.assertOnly(f, "E9045", MODEL, "bedrock:InvokeModel: the worker calls ConverseStream only")
        for action in ("bedrock:Invoke*", "bedrock:ListFoundationModels"):
            self.assertHas(mutated(lambda t: model(t).update(Action=action)), "E9045", MODEL, f"{action}: the worker calls ConverseStream only")

    def test_an_unconditional_grant(self):
        # (cfn-lint's W1030 then checks BedrockModelArns's empty default as an ARN, too.)
        f = mutated(lambda t: t["Resources"]["WorkerModelPolicy"].pop("Condition"))
        self.assertHas(f, "E9045", MODEL, "Bedrock actions without a condition: granted with LLMProvider=demo/openai too")

    def test_a_condition_not_tied_to_bedrock(self):
        def m(t):
            t["Conditions"]["NotDemo"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "LLMProvider"}, "demo"]}]}
            t["Resources"]["WorkerModelPolicy"]["Condition"] = "NotDemo"
        f = self.assertHas(mutated(m), "E9045", MODEL, "Bedrock actions granted with LLMProvider=openai (conditions NotDemo=True)")
        self.assertEqual(len(f), 1, f)
        f = mutated(lambda t: t["Resources"]["WorkerModelPolicy"].update(Condition="HasLlm"))
        f = lint(f, ours_only=True)
        self.assertHas(f, "E9045", MODEL, "cannot tell when the Bedrock actions are granted (conditions HasLlm=True): no value for LlmBaseUrl")
        self.assertHas(f, "E9045", "Resources/WorkerRole", "has no bedrock:InvokeModelWithResponseStream granted with LLMProvider=bedrock")

    def test_the_grant_missing(self):
        f = mutated(lambda t: t["Resources"].pop("WorkerModelPolicy"))
        self.assertHas(f, "E9045", "Resources/WorkerRole", "the worker could not call its model")

    def test_a_grant_in_the_role_under_fn_if(self):
        def inline(resource):
            def m(t):
                s = copy.deepcopy(model(t))
                s["Resource"] = resource
                R(t, "WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"].append(
                    {"Fn::If": ["InvokesBedrock", s, {"Ref": "AWS::NoValue"}]})
                t["Resources"].pop("WorkerModelPolicy")
            return mutated(m)
        self.assertClean(inline({"Ref": "BedrockModelArns"}))
        f = lint(inline("*"), ours_only=True)
        appended = len(R(BASE, "WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"])
        path = f"WorkerRole/Properties/Policies/0/PolicyDocument/Statement/{appended}/Fn::If/1"
        self.assertHas(f, "E9045", path, 'on "*"')
        self.assertHas(f, "E9041", path, 'Resource "*" is not allowed')

    def test_another_role_invokes_a_model(self):
        f = mutated(lambda t: R(t, "ReceiverRole")["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Effect": "Allow", "Action": "bedrock:InvokeModelWithResponseStream", "Resource": {"Ref": "BedrockModelArns"}}))
        self.assertHas(f, "E9045", "ReceiverRole/Properties/Policies/0/PolicyDocument/Statement/5", "ReceiverRole gets Bedrock actions")

    def test_model_arns_that_admit_a_wildcard(self):
        f = mutated(lambda t: t["Parameters"]["BedrockModelArns"].update(AllowedPattern="^(arn:aws:bedrock:[^,]+)?$"))
        self.assertOnly(f, "E9045", "Parameters/BedrockModelArns/AllowedPattern", "admits 'arn:aws:bedrock:*::foundation-model/*'")
        f = mutated(lambda t: t["Parameters"]["BedrockModelArns"].pop("AllowedPattern"))
        self.assertHas(f, "E9045", "Parameters/BedrockModelArns", 'no AllowedPattern: a deployer could grant "*"')

    def test_a_provider_the_grant_does_not_follow(self):
        f = mutated(set_env(LLM_PROVIDER="bedrock"))
        self.assertHas(f, "E9045", "Variables/LLM_PROVIDER", 'LLM_PROVIDER is "bedrock"; want !Ref LLMProvider')


class Storage(Case):
    def test_E9050_queue_not_encrypted(self):
        f = mutated(lambda t: R(t, "DeadLetterQueue").update(SqsManagedSseEnabled=False))
        self.assertOnly(f, "E9050", "DeadLetterQueue/Properties", "set SqsManagedSseEnabled: true")

    def test_table_not_encrypted(self):
        self.assertOnly(mutated(lambda t: R(t, "IdempotencyTable").pop("SSESpecification")), "E9050", "IdempotencyTable")

    def test_E9051_ttl_on_another_attribute(self):
        f = mutated(lambda t: R(t, "IdempotencyTable")["TimeToLiveSpecification"].update(AttributeName="ttl"))
        self.assertOnly(f, "E9051", "IdempotencyTable/Properties/TimeToLiveSpecification", "set AttributeName: expires_at")

    def test_E9052_installations_without_pitr(self):
        f = mutated(lambda t: R(t, "InstallationsTable").pop("PointInTimeRecoverySpecification"))
        self.assertOnly(f, "E9052", "InstallationsTable/Properties", "no point-in-time recovery")

    def test_installations_deleted_with_the_stack(self):
        f = edited((r"(  InstallationsTable:\n    Type: AWS::DynamoDB::Table\n)    DeletionPolicy: Retain\n", r"\1    DeletionPolicy: Delete\n"))
        self.assertHas(f, "E9052", "Resources/InstallationsTable", "DeletionPolicy is \"Delete\"; want Retain")

    def test_installations_table_missing(self):
        self.assertHas(mutated(lambda t: t["Resources"].pop("InstallationsTable")), "E9052", "Resources", "no AWS::DynamoDB::Table InstallationsTable")


class Alarms(Case):
    def test_E9060_alarm_nobody_hears(self):
        self.assertOnly(mutated(lambda t: R(t, "WorkerThrottlesAlarm").pop("AlarmActions")), "E9060", "WorkerThrottlesAlarm")

    def test_E9061_alarm_missing(self):
        self.assertOnly(mutated(lambda t: t["Resources"].pop("DeadLetterQueueNotEmptyAlarm")), "E9061",
                        "Resources/DeadLetterQueue", "no alarm on AWS/SQS ApproximateNumberOfMessagesVisible of DeadLetterQueue")


class Environment(Case):
    def test_E9070_variable_missing(self):
        f = mutated(lambda t: R(t, "WorkerFunction")["Environment"]["Variables"].pop("BACKOFF_MAX"))
        self.assertOnly(f, "E9070", "WorkerFunction lacks environment variable BACKOFF_MAX")

    def test_variable_the_code_does_not_read(self):
        f = mutated(lambda t: R(t, "ReceiverFunction")["Environment"]["Variables"].update(SLACK_SIGNING_SECRET="oops"))
        self.assertOnly(f, "E9070", "Variables/SLACK_SIGNING_SECRET", "which its code does not read")

    def test_golden_files_missing(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertOnly(TEXT, "E9070", "cannot read the variable list for ReceiverFunction (receiver/testdata/lambda-env.json",
                            E9070={"golden_root": d})


class IgnoreReasons(Case):
    def test_E9080_ignore_without_a_reason(self):
        f = mutated(lambda t: t.update(Metadata={"cfn-lint": {"config": {"ignore_checks": ["W2001"]}}}))
        self.assertOnly(f, "E9080", "Metadata/cfn-lint/config/ignore_checks", "W2001 is ignored in the template's Metadata without a reason")

    def test_resource_ignores(self):
        f = mutated(lambda t: t["Resources"]["AlarmTopic"].update(
            Metadata={"cfn-lint": {"config": {"ignore_checks": ["I3011"]}, "ignore_reasons": {"I3011": " ", "W3005": "old"}}}))
        self.assertHas(f, "E9080", "Resources/AlarmTopic/Metadata/cfn-lint/config/ignore_checks", "I3011")
        self.assertHas(f, "E9080", "AlarmTopic/Metadata/cfn-lint/ignore_reasons/W3005", "not ignored")

    def test_an_ignore_with_its_reason_passes(self):
        f = mutated(lambda t: t.update(Metadata={"cfn-lint": {"config": {"ignore_checks": ["W2001"]}, "ignore_reasons": {"W2001": "kept for the next release"}}}))
        self.assertClean(f)


class Evaluation(Case):
    def test_evaluate(self):
        tpl = {
            "Conditions": {
                "A": {"Fn::Equals": [{"Ref": "X"}, "a"]},
                "B": {"Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "Y"}, ""]}]}]},
                "C": {"Fn::Or": [{"Condition": "B"}, {"Fn::Equals": [{"Ref": "Y"}, "z"]}]},
            },
            "Mappings": {"M": {"a": {"k": 1}}},
        }
        v = {"Fn::If": ["C", {"Ref": "Y"}, {"Ref": "AWS::NoValue"}]}
        for x, y, want in (("a", "y", "y"), ("a", "", sr.NO_VALUE), ("b", "z", "z"), ("b", "y", sr.NO_VALUE)):
            self.assertEqual(sr.evaluate(v, tpl, {"X": x, "Y": y}), want, (x, y))
        lookups = []
        self.assertEqual(sr.evaluate({"Fn::FindInMap": ["M", {"Ref": "X"}, "k"]}, tpl, {"X": "a"}, lookups), 1)
        self.assertEqual(lookups, [["Mappings", "M", "a", "k"]])
        self.assertEqual(sr.evaluate({"Fn::Join": [",", {"Ref": "L"}]}, tpl, {"L": ["a", "b"]}), "a,b")
        self.assertEqual(sr.evaluate({"Fn::Join": ["-", ["x", {"Ref": "X"}]]}, tpl, {"X": "a"}), "x-a")
        for bad, err in (({"Fn::If": ["Nope", 1, 2]}, "unknown condition Nope"), ({"Ref": "Z"}, "no value for Z"),
                         ({"Fn::FindInMap": ["M", "b", "k"]}, 'Mappings.M has no key "b"'), ({"Fn::Sub": "x"}, "cannot evaluate"),
                         ({"Fn::Join": [",", [1, 2]]}, "cannot join")):
            with self.assertRaisesRegex(sr.EvalError, re.escape(err)):
                sr.evaluate(bad, tpl, {})


class CfnLintScript(Case):
    """cfn-lint.sh fails on an informational finding (so on warnings and errors too) and on one
    of ours (so it loads the rules). make test-infra runs it on the real template, which passes;
    an ignored rule is test_an_ignore_with_its_reason_passes. The two runs go in parallel."""

    CASES = {
        "informational": (edited((r"(Type: AWS::DynamoDB::Table\n)    DeletionPolicy: Delete\n    UpdateReplacePolicy: Delete\n", r"\1")), 1, "I3011 "),
        "ours": (edited(("DeletionPolicy: Retain", "DeletionPolicy: Delete")), 1, "E9013 "),
    }

    def test_cfn_lint_sh(self):
        with tempfile.TemporaryDirectory() as d:
            runs = {}
            for name, (text, _, _) in self.CASES.items():
                path = os.path.join(d, f"{name}.yaml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                runs[name] = subprocess.Popen(["bash", SCRIPT, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, (_, status, want) in self.CASES.items():
                out = runs[name].communicate()[0]
                with self.subTest(name):
                    self.assertEqual(runs[name].returncode, status, out)
                    self.assertIn(want, out)


if __name__ == "__main__":
    unittest.main()
