"""slackrelay's alarms: the six of docs/deploy.md ("Alarms"), each heard on the stack's topic.

Why ours: cfn-lint checks an alarm's properties, not whether anyone hears it or whether the
alarms the runbook starts from exist. Each AWS::CloudWatch::Alarm must notify an SNS topic of
the stack, and there must be an alarm on each metric of REQUIRED (by namespace, metric and the
resource its dimension names).
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

ALARM = "AWS::CloudWatch::Alarm"

# (namespace, metric, the resource the dimension names, the alarm in docs/deploy.md)
REQUIRED = [
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", sr.DLQ, "<stack>-dlq-not-empty"),
    ("AWS/SQS", "ApproximateAgeOfOldestMessage", sr.EVENTS, "<stack>-events-oldest-age"),
    ("AWS/Lambda", "Errors", sr.RECEIVER, "<stack>-receiver-errors"),
    ("AWS/Lambda", "Duration", sr.RECEIVER, "<stack>-receiver-p99-duration"),
    ("AWS/Lambda", "Errors", sr.WORKER, "<stack>-worker-errors"),
    ("AWS/Lambda", "Throttles", sr.WORKER, "<stack>-worker-throttles"),
]


class AlarmActions(CloudFormationLintRule):
    id = "E9060"
    shortdesc = "Every alarm notifies an SNS topic of the stack"
    description = "AlarmActions of each AWS::CloudWatch::Alarm include !Ref of an AWS::SNS::Topic in the template"
    tags = ["slackrelay", "cloudwatch"]

    def match(self, cfn):
        topics = set(cfn.get_resources("AWS::SNS::Topic"))
        out = []
        for aid, a in cfn.get_resources(ALARM).items():
            actions = sr.as_list(sr.props(a).get("AlarmActions"))
            if not any(isinstance(x, dict) and x.get("Ref") in topics for x in actions):
                out.append(RuleMatch(["Resources", aid, "Properties", "AlarmActions"],
                                     f"{aid} notifies no SNS topic of the stack; add !Ref AlarmTopic to its AlarmActions, or nobody hears it"))
        return out


class RequiredAlarms(CloudFormationLintRule):
    id = "E9061"
    shortdesc = "The alarms docs/deploy.md lists exist"
    description = "An alarm on: " + "; ".join(f"{ns} {m} of {rid}" for ns, m, rid, _ in REQUIRED)
    tags = ["slackrelay", "cloudwatch"]

    def match(self, cfn):
        watched = set()
        for a in cfn.get_resources(ALARM).values():
            p = sr.props(a)
            for d in sr.as_list(p.get("Dimensions")):
                if isinstance(d, dict) and sr.ref_target(d.get("Value")):
                    watched.add((p.get("Namespace"), p.get("MetricName"), sr.ref_target(d["Value"])))
        resources = cfn.template.get("Resources") or {}
        return [
            RuleMatch(["Resources", rid], f"no alarm on {ns} {metric} of {rid}; docs/deploy.md (Alarms) lists {name}")
            for ns, metric, rid, name in REQUIRED
            if rid in resources and (ns, metric, rid) not in watched
        ]
