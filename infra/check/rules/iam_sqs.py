"""slackrelay's queue sends: each function sends only to the queues it has the URL of.

Why ours: cfn-lint checks that sqs:SendMessage is a real action and that a GetAtt names a real
attribute, not which queues a role may send to. Here a function's environment says it: the
variables set to !Ref Queue (EVENTS_QUEUE_URL, DLQ_URL). Its role's sqs:SendMessage (which also
covers SendMessageBatch), granted by any action pattern, must name only those queues, each as
!GetAtt Queue.Arn.
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402


class SqsSend(CloudFormationLintRule):
    id = "E9044"
    shortdesc = "Each function's role sends only to the queues its environment names"
    description = "sqs:SendMessage only on !GetAtt Queue.Arn of queues the function has a variable !Ref Queue for"
    tags = ["slackrelay", "iam", "sqs"]

    def match(self, cfn):
        out = []
        queues = set(cfn.get_resources(sr.QUEUE))
        for fid in (sr.RECEIVER, sr.WORKER):
            rid = sr.role_of(cfn, fid)
            if not rid:
                continue
            named = [v["Ref"] for v in sr.env_vars(sr.resource(cfn, fid, sr.FUNCTION)).values()
                     if isinstance(v, dict) and v.get("Ref") in queues]
            for st in sr.allow_statements(cfn):
                if rid not in st.roles:
                    continue
                actions = [a for a in st.actions if sr.covers(a, "sqs:SendMessage")]
                if not actions:
                    continue
                for r in st.resources:
                    if any(sr.same_ref(r, q, "Arn") for q in named):
                        continue
                    out.append(RuleMatch(st.path, (
                        f"{rid}'s {', '.join(actions)} on {sr.short(r)}: {fid} may send only to the queues its environment "
                        f"names ({', '.join(named) or 'none'}), each as !GetAtt Queue.Arn")))
        return out
