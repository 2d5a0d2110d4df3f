"""slackrelay's stored events: queues and the idempotency table encrypted, the table shaped as
the worker's journal reads it.

Why ours: cfn-lint's encryption checks cover other services; for SQS and DynamoDB it leaves
encryption to the account's defaults and reports nothing when it is off. Slack events hold
users' messages, so both queues and the table say explicitly that they are encrypted
(docs/deploy.md, "What the stack contains"). And cfn-lint cannot know the attribute names the
worker's code uses: the table is keyed by pk and expires by TTL on expires_at
(worker/journal/journal.go); with another TTL attribute records would never expire.
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

TABLE = "AWS::DynamoDB::Table"


class Encryption(CloudFormationLintRule):
    id = "E9050"
    shortdesc = "Queues and tables are encrypted, explicitly"
    description = "Every AWS::SQS::Queue sets SqsManagedSseEnabled: true or a KmsMasterKeyId; every AWS::DynamoDB::Table SSESpecification.SSEEnabled: true"
    tags = ["slackrelay", "sqs", "dynamodb"]

    def match(self, cfn):
        out = []
        for qid, q in cfn.get_resources(sr.QUEUE).items():
            p = sr.props(q)
            if p.get("SqsManagedSseEnabled") not in (True, "true") and p.get("KmsMasterKeyId") is None:
                out.append(RuleMatch(["Resources", qid, "Properties"], f"{qid} is not encrypted explicitly; set SqsManagedSseEnabled: true (or a KmsMasterKeyId)"))
        for tid, t in cfn.get_resources(TABLE).items():
            sse = sr.props(t).get("SSESpecification")
            if not isinstance(sse, dict) or sse.get("SSEEnabled") not in (True, "true"):
                out.append(RuleMatch(["Resources", tid, "Properties"], f"{tid} is not encrypted explicitly; set SSESpecification: {{SSEEnabled: true}}"))
        return out


class IdempotencyTable(CloudFormationLintRule):
    id = "E9051"
    shortdesc = "The worker's table is keyed by pk and expires records on expires_at"
    description = "The table WorkerFunction's IDEMPOTENCY_TABLE names: KeySchema [pk HASH], pk of type S, TimeToLiveSpecification on expires_at, enabled"
    tags = ["slackrelay", "dynamodb"]

    def match(self, cfn):
        worker = sr.resource(cfn, sr.WORKER, sr.FUNCTION)
        if worker is None:
            return []
        v = sr.env_vars(worker).get("IDEMPOTENCY_TABLE")
        tid = v.get("Ref") if isinstance(v, dict) else None
        table = sr.resource(cfn, tid, TABLE) if isinstance(tid, str) else None
        if table is None:
            return [RuleMatch(["Resources", sr.WORKER, "Properties", "Environment", "Variables", "IDEMPOTENCY_TABLE"],
                              f"{sr.WORKER} IDEMPOTENCY_TABLE is {sr.short(v)}; want !Ref of the stack's {TABLE}")]
        p, base, out = sr.props(table), ["Resources", tid, "Properties"], []
        keys = [(k.get("AttributeName"), k.get("KeyType")) for k in sr.as_list(p.get("KeySchema")) if isinstance(k, dict)]
        types = {a.get("AttributeName"): a.get("AttributeType") for a in sr.as_list(p.get("AttributeDefinitions")) if isinstance(a, dict)}
        if keys != [("pk", "HASH")] or types.get("pk") != "S":
            out.append(RuleMatch(base + ["KeySchema"], f"{tid} KeySchema is {sr.short(p.get('KeySchema'))}; the worker's journal wants a string HASH key named pk only"))
        ttl = p.get("TimeToLiveSpecification")
        if not isinstance(ttl, dict) or ttl.get("AttributeName") != "expires_at" or ttl.get("Enabled") not in (True, "true"):
            out.append(RuleMatch(base + ["TimeToLiveSpecification"], (
                f"{tid} TimeToLiveSpecification is {sr.short(ttl)}; set AttributeName: expires_at, Enabled: true "
                "(the worker's journal writes expires_at; without it records never expire)")))
        return out


INSTALLATIONS = "InstallationsTable"


class InstallationsTable(CloudFormationLintRule):
    id = "E9052"
    shortdesc = "The installations table is kept: Retain, point-in-time recovery, keyed by pk"
    description = (
        "InstallationsTable (shared/install: every workspace's bot and refresh tokens) has "
        "DeletionPolicy and UpdateReplacePolicy Retain, PointInTimeRecoveryEnabled: true, and "
        "KeySchema [pk HASH] of type S"
    )
    tags = ["slackrelay", "dynamodb"]

    def match(self, cfn):
        table = sr.resource(cfn, INSTALLATIONS, TABLE)
        if table is None:
            return [RuleMatch(["Resources"], f"no {TABLE} {INSTALLATIONS}; shared/install keeps the workspaces' installations there")]
        out, base = [], ["Resources", INSTALLATIONS]
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if table.get(policy) != "Retain":
                out.append(RuleMatch(base, (
                    f"{INSTALLATIONS} {policy} is {sr.short(table.get(policy))}; want Retain "
                    "(losing it means every workspace's admin must install the app again)")))
        p = sr.props(table)
        pitr = p.get("PointInTimeRecoverySpecification")
        if not isinstance(pitr, dict) or pitr.get("PointInTimeRecoveryEnabled") not in (True, "true"):
            out.append(RuleMatch(base + ["Properties"], f"{INSTALLATIONS} has no point-in-time recovery; set PointInTimeRecoverySpecification: {{PointInTimeRecoveryEnabled: true}}"))
        keys = [(k.get("AttributeName"), k.get("KeyType")) for k in sr.as_list(p.get("KeySchema")) if isinstance(k, dict)]
        types = {a.get("AttributeName"): a.get("AttributeType") for a in sr.as_list(p.get("AttributeDefinitions")) if isinstance(a, dict)}
        if keys != [("pk", "HASH")] or types.get("pk") != "S":
            out.append(RuleMatch(base + ["Properties", "KeySchema"], f"{INSTALLATIONS} KeySchema is {sr.short(p.get('KeySchema'))}; shared/install wants a string HASH key named pk only"))
        return out
