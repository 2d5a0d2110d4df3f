"""slackrelay's stack: the pieces other code and the other rules rely on.

Why ours: cfn-lint checks that a template is valid CloudFormation, not that it still has what
this project's code, scripts and docs expect of it: the logical ids the other rules (and
infra/local's Lambda-mode tests) look up, a template `aws cloudformation deploy` takes with
CAPABILITY_IAM alone (deploy.sh), functions that run what `make build` builds, the Slack
routes the app manifest points at, and the outputs deploy.sh and slackrelay-dlq read.
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402


class ProjectResources(CloudFormationLintRule):
    id = "E9000"
    shortdesc = "slackrelay's functions and queues are there under their logical ids"
    description = (
        "ReceiverFunction and WorkerFunction (AWS::Lambda::Function), EventsQueue and "
        "DeadLetterQueue (AWS::SQS::Queue): the other E9xxx rules look them up by these ids"
    )
    tags = ["slackrelay"]

    def match(self, cfn):
        want = [(sr.RECEIVER, sr.FUNCTION), (sr.WORKER, sr.FUNCTION), (sr.EVENTS, sr.QUEUE), (sr.DLQ, sr.QUEUE)]
        return [
            RuleMatch(["Resources"], f"Resources.{rid} ({rtype}) not found; the slackrelay rules look it up by this id")
            for rid, rtype in want
            if sr.resource(cfn, rid, rtype) is None
        ]


class NoTransform(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "Plain CloudFormation, no Transform"
    description = "infra/deploy.sh deploys with CAPABILITY_IAM only; a transform would need CAPABILITY_AUTO_EXPAND"
    tags = ["slackrelay"]

    def match(self, cfn):
        # transform_pre: the template as written (cfn-lint has already run a SAM transform).
        if not cfn.transform_pre.get("Transform"):
            return []
        return [RuleMatch(["Transform"], "the template has a Transform; keep it plain CloudFormation (infra/deploy.sh deploys with CAPABILITY_IAM only)")]


class BuiltFunctions(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "The functions run what make build builds"
    description = "Runtime provided.al2023 and Architectures [arm64]: make build makes static linux/arm64 bootstrap binaries"
    tags = ["slackrelay", "lambda"]

    def match(self, cfn):
        out = []
        for fid in (sr.RECEIVER, sr.WORKER):
            fn = sr.resource(cfn, fid, sr.FUNCTION)
            if fn is None:
                continue
            p = sr.props(fn)
            base = ["Resources", fid, "Properties"]
            if p.get("Runtime") != "provided.al2023":
                out.append(RuleMatch(base + ["Runtime"], f"{fid} Runtime is {sr.short(p.get('Runtime'))}, want provided.al2023 (make build makes a bootstrap binary)"))
            if p.get("Architectures") != ["arm64"]:
                out.append(RuleMatch(base + ["Architectures"], f"{fid} Architectures is {sr.short(p.get('Architectures'))}, want [arm64] (make build builds for linux/arm64)"))
        return out


SLACK_ROUTES = ["POST /slack/events", "POST /slack/commands", "POST /slack/interactivity"]


class SlackRoutes(CloudFormationLintRule):
    id = "E9003"
    shortdesc = "The HTTP API has the routes the Slack app manifest uses"
    description = "POST /slack/events, /slack/commands and /slack/interactivity (infra/slack-app-manifest.yaml)"
    tags = ["slackrelay", "apigateway"]

    def match(self, cfn):
        have = {sr.props(r).get("RouteKey") for r in cfn.get_resources("AWS::ApiGatewayV2::Route").values()}
        return [
            RuleMatch(["Resources"], f"no AWS::ApiGatewayV2::Route with RouteKey {key}: infra/slack-app-manifest.yaml sends Slack there")
            for key in SLACK_ROUTES
            if key not in have
        ]


# Output -> who reads it.
OUTPUTS = {
    "EventsUrl": "deploy.sh (the manifest it prints)",
    "CommandsUrl": "docs/deploy.md, step 6",
    "InteractivityUrl": "docs/deploy.md, step 6",
    "EventsQueueUrl": "slackrelay-dlq",
    "DeadLetterQueueUrl": "slackrelay-dlq",
    "IdempotencyTableName": "docs/deploy.md, step 6",
    "ReceiverFunctionName": "docs/deploy.md, step 6",
    "WorkerFunctionName": "docs/deploy.md, step 6",
    "AlarmTopicArn": "docs/deploy.md, Alarms",
}


class StackOutputs(CloudFormationLintRule):
    id = "E9004"
    shortdesc = "The outputs deploy.sh, slackrelay-dlq and the docs read"
    description = "Outputs: " + ", ".join(OUTPUTS)
    tags = ["slackrelay", "outputs"]

    def match(self, cfn):
        have = cfn.template.get("Outputs") if isinstance(cfn.template.get("Outputs"), dict) else {}
        return [
            RuleMatch(["Outputs"], f"no output {name}; {reader} reads it")
            for name, reader in OUTPUTS.items()
            if name not in have
        ]
