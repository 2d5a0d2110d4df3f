"""slackrelay's queues: redrive, message size, retention, kept on delete.

Why ours: cfn-lint checks each queue property on its own (types, ranges, that a redrive target
is a queue). It does not know what this project needs of the pair: the events queue redriving
to the DLQ after the worker's MAX_RECEIVE_COUNT, 1 MiB messages set explicitly (an existing
queue keeps the size it was created with), both queues retained when the stack is deleted or
replaces them, and the DLQ keeping messages 14 days (docs/runbook.md counts on it), longer
than the events queue.
"""

import json
import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

MAX_MESSAGE_SIZE = 1048576  # SQS's largest message
DLQ_RETENTION = 1209600  # 14 days, SQS's longest retention
DEFAULT_RETENTION = 345600  # SQS's default, 4 days


def _queues(cfn):
    return [(qid, q) for qid in (sr.EVENTS, sr.DLQ) if (q := sr.resource(cfn, qid, sr.QUEUE)) is not None]


def _redrive(cfn):
    """The events queue's RedrivePolicy as a dict (a JSON string is read), or None."""
    r = sr.props(sr.resource(cfn, sr.EVENTS, sr.QUEUE)).get("RedrivePolicy")
    if isinstance(r, str):
        try:
            r = json.loads(r)
        except ValueError:
            return None
    return r if isinstance(r, dict) else None


class Redrive(CloudFormationLintRule):
    id = "E9010"
    shortdesc = "The events queue redrives to the DLQ"
    description = "EventsQueue RedrivePolicy: deadLetterTargetArn !GetAtt DeadLetterQueue.Arn and a maxReceiveCount"
    tags = ["slackrelay", "sqs"]

    def match(self, cfn):
        if sr.resource(cfn, sr.EVENTS, sr.QUEUE) is None:
            return []
        path = ["Resources", sr.EVENTS, "Properties", "RedrivePolicy"]
        r = _redrive(cfn)
        if r is None:
            return [RuleMatch(path, f"{sr.EVENTS} has no RedrivePolicy; want one to {sr.DLQ} (deadLetterTargetArn !GetAtt {sr.DLQ}.Arn)")]
        out = []
        if not sr.same_ref(r.get("deadLetterTargetArn"), sr.DLQ, "Arn"):
            out.append(RuleMatch(path + ["deadLetterTargetArn"], f"{sr.EVENTS} deadLetterTargetArn is {sr.short(r.get('deadLetterTargetArn'))}, want !GetAtt {sr.DLQ}.Arn"))
        if r.get("maxReceiveCount") is None:
            out.append(RuleMatch(path, f"{sr.EVENTS} RedrivePolicy has no maxReceiveCount"))
        return out


class MaxReceiveCount(CloudFormationLintRule):
    id = "E9011"
    shortdesc = "The worker's MAX_RECEIVE_COUNT is the redrive maxReceiveCount"
    description = "WorkerFunction MAX_RECEIVE_COUNT equals EventsQueue RedrivePolicy maxReceiveCount (the worker reads it to know a last attempt)"
    tags = ["slackrelay", "sqs", "lambda"]

    def match(self, cfn):
        r = _redrive(cfn)
        env = sr.env_vars(sr.resource(cfn, sr.WORKER, sr.FUNCTION))
        have, want = env.get("MAX_RECEIVE_COUNT"), (r or {}).get("maxReceiveCount")
        if have is None or want is None or have == want or str(have) == str(want):
            return []
        return [RuleMatch(
            ["Resources", sr.WORKER, "Properties", "Environment", "Variables", "MAX_RECEIVE_COUNT"],
            f"{sr.WORKER} MAX_RECEIVE_COUNT {sr.short(have)} differs from {sr.EVENTS} RedrivePolicy maxReceiveCount {sr.short(want)}; set both from the same value",
        )]


class MessageSize(CloudFormationLintRule):
    id = "E9012"
    shortdesc = "Both queues take 1 MiB messages, set explicitly"
    description = "MaximumMessageSize 1048576 on EventsQueue and DeadLetterQueue (an existing queue keeps the size it was created with)"
    tags = ["slackrelay", "sqs"]

    def match(self, cfn):
        out = []
        for qid, q in _queues(cfn):
            size = sr.props(q).get("MaximumMessageSize")
            if str(size) != str(MAX_MESSAGE_SIZE):
                got = "not set" if size is None else sr.short(size)
                out.append(RuleMatch(
                    ["Resources", qid, "Properties", "MaximumMessageSize"],
                    f"{qid} MaximumMessageSize is {got}; set it to {MAX_MESSAGE_SIZE} (an existing queue keeps the size it was created with)",
                ))
        return out


class RetainQueues(CloudFormationLintRule):
    id = "E9013"
    shortdesc = "Both queues are retained on stack delete and replacement"
    description = "DeletionPolicy and UpdateReplacePolicy Retain on EventsQueue and DeadLetterQueue"
    tags = ["slackrelay", "sqs"]

    def match(self, cfn):
        out = []
        for qid, q in _queues(cfn):
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if q.get(policy) != "Retain":
                    got = "not set (Delete)" if q.get(policy) is None else sr.short(q.get(policy))
                    out.append(RuleMatch(
                        ["Resources", qid, policy],
                        f"{qid} {policy} is {got}; set Retain: a stack delete or replacement must not destroy queued or dead-lettered events",
                    ))
        return out


class DlqRetention(CloudFormationLintRule):
    id = "E9014"
    shortdesc = "The DLQ keeps messages 14 days, longer than the events queue"
    description = "DeadLetterQueue MessageRetentionPeriod 1209600, above EventsQueue's (a redriven message keeps its first enqueue time)"
    tags = ["slackrelay", "sqs"]

    def match(self, cfn):
        eq, dlq = sr.resource(cfn, sr.EVENTS, sr.QUEUE), sr.resource(cfn, sr.DLQ, sr.QUEUE)
        if eq is None or dlq is None:
            return []
        params = sr.parameters(cfn)
        path = ["Resources", sr.DLQ, "Properties", "MessageRetentionPeriod"]
        eq_ret, eq_how = sr.resolve_number(sr.props(eq).get("MessageRetentionPeriod", DEFAULT_RETENTION), params, "max")
        dlq_ret, dlq_how = sr.resolve_number(sr.props(dlq).get("MessageRetentionPeriod", DEFAULT_RETENTION), params, "min")
        if eq_ret is None or dlq_ret is None:
            return [RuleMatch(path, f"cannot evaluate the queues' MessageRetentionPeriod ({eq_how}; {dlq_how}); write numbers or bounded parameters")]
        out = []
        if dlq_ret != DLQ_RETENTION:
            out.append(RuleMatch(path, f"{sr.DLQ} MessageRetentionPeriod is {dlq_ret} s; set {DLQ_RETENTION} (14 days, docs/runbook.md counts on it)"))
        if not dlq_ret > eq_ret:
            out.append(RuleMatch(path, f"{sr.DLQ} MessageRetentionPeriod {dlq_ret} s must exceed {sr.EVENTS}'s {eq_ret} s"))
        return out
