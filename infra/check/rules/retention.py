"""slackrelay's record retention: the worker keeps an event's record long enough that a
replayed or redriven dead letter still finds it, so it is not answered twice.

Why ours: cfn-lint sees the worker's environment as a map of strings. It cannot know that
DLQ_RETENTION must be the DLQ's MessageRetentionPeriod, that IDEMPOTENCY_TTL must be at least
DLQ_RETENTION + REPLAY_WINDOW (the worker refuses to start otherwise, so a deploy would only
show it as failing invocations), or that the three are Go durations ("336h", not "14d").
"""

import json
import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

NAMES = ("DLQ_RETENTION", "REPLAY_WINDOW", "IDEMPOTENCY_TTL")


class RecordRetention(CloudFormationLintRule):
    id = "E9030"
    shortdesc = "IDEMPOTENCY_TTL >= DLQ_RETENTION + REPLAY_WINDOW, DLQ_RETENTION = the DLQ's retention"
    description = (
        "The worker's DLQ_RETENTION, REPLAY_WINDOW and IDEMPOTENCY_TTL are Go durations; "
        "DLQ_RETENTION equals DeadLetterQueue MessageRetentionPeriod and IDEMPOTENCY_TTL is at "
        "least DLQ_RETENTION + REPLAY_WINDOW"
    )
    tags = ["slackrelay", "lambda", "sqs"]

    def match(self, cfn):
        fn = sr.resource(cfn, sr.WORKER, sr.FUNCTION)
        if fn is None:
            return []
        env = sr.env_vars(fn)
        where = lambda name: ["Resources", sr.WORKER, "Properties", "Environment", "Variables", name]  # noqa: E731
        out, d = [], {}
        for name in NAMES:
            v = env.get(name)
            if not isinstance(v, str):
                got = "not set" if v is None else sr.short(v)
                out.append(RuleMatch(where(name), f"{sr.WORKER} {name} is {got}; write a Go duration out, such as \"336h\""))
                continue
            try:
                d[name] = sr.parse_go_duration(v)
            except ValueError as err:
                out.append(RuleMatch(where(name), f"{sr.WORKER} {name} {json.dumps(v)} is not a Go duration: {err}"))

        dlq = sr.resource(cfn, sr.DLQ, sr.QUEUE)
        if "DLQ_RETENTION" in d and dlq is not None:
            ret_path = ["Resources", sr.DLQ, "Properties", "MessageRetentionPeriod"]
            raw = sr.props(dlq).get("MessageRetentionPeriod", 345600)
            ret = sr.number(raw)
            if not isinstance(ret, int):
                out.append(RuleMatch(ret_path, f"cannot tell {sr.DLQ}'s retention for DLQ_RETENTION: want a literal number of seconds, got {sr.short(raw)}"))
            elif d["DLQ_RETENTION"] != ret * sr.NS:
                out.append(RuleMatch(where("DLQ_RETENTION"), (
                    f"{sr.WORKER} DLQ_RETENTION {env['DLQ_RETENTION']} ({sr.seconds(d['DLQ_RETENTION'])}) differs from "
                    f"{sr.DLQ} MessageRetentionPeriod {sr.seconds(ret * sr.NS)}; make them equal")))

        if all(n in d for n in NAMES):
            want = d["DLQ_RETENTION"] + d["REPLAY_WINDOW"]
            if d["IDEMPOTENCY_TTL"] < want:
                out.append(RuleMatch(where("IDEMPOTENCY_TTL"), (
                    f"{sr.WORKER} IDEMPOTENCY_TTL {env['IDEMPOTENCY_TTL']} ({sr.seconds(d['IDEMPOTENCY_TTL'])}) < "
                    f"DLQ_RETENTION {env['DLQ_RETENTION']} + REPLAY_WINDOW {env['REPLAY_WINDOW']} ({sr.seconds(want)}): "
                    "a replayed dead letter could outlive its record and be answered twice; the worker refuses to start")))
        return out
