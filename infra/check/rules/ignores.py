"""slackrelay's cfn-lint ignores: every rule ignored in the template says why.

Why ours: cfn-lint honours Metadata: cfn-lint: config: ignore_checks (of the template or of a
resource) without asking for a reason. Here each ignored rule id needs one beside it, under
cfn-lint: ignore_reasons: <id>, and each reason needs its ignored rule (a stale reason is
removed with its ignore).
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402


class IgnoreReasons(CloudFormationLintRule):
    id = "E9080"
    shortdesc = "Every cfn-lint rule ignored in the template has a written reason"
    description = "Metadata.cfn-lint.config.ignore_checks ids each have Metadata.cfn-lint.ignore_reasons.<id>, and no reason is left without its ignore"
    tags = ["slackrelay", "metadata"]

    def match(self, cfn):
        places = [(["Metadata"], cfn.template.get("Metadata"))] + [
            (["Resources", rid, "Metadata"], r.get("Metadata"))
            for rid, r in (cfn.template.get("Resources") or {}).items() if isinstance(r, dict)
        ]
        out = []
        for path, md in places:
            lint = md.get("cfn-lint") if isinstance(md, dict) else None
            if not isinstance(lint, dict):
                continue
            config = lint.get("config") if isinstance(lint.get("config"), dict) else {}
            ignored = sr.as_list(config.get("ignore_checks"))
            reasons = lint.get("ignore_reasons") if isinstance(lint.get("ignore_reasons"), dict) else {}
            where = ".".join(path[1:2] + ["Metadata"]) if len(path) > 1 else "the template's Metadata"
            for rid in ignored:
                if not isinstance(reasons.get(rid), str) or not reasons[rid].strip():
                    out.append(RuleMatch(path + ["cfn-lint", "config", "ignore_checks"],
                                         f"cfn-lint rule {rid} is ignored in {where} without a reason; add cfn-lint: ignore_reasons: {rid}: why"))
            for rid in reasons:
                if rid not in ignored:
                    out.append(RuleMatch(path + ["cfn-lint", "ignore_reasons", rid], f"{where} gives a reason for {rid}, which is not ignored; remove it"))
        return out
