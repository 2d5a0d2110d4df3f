"""slackrelay's Lambda environments: each function sets exactly the variables its Go code reads.

Why ours: cfn-lint checks that Environment.Variables is a map of valid names, not which names
a function's code reads. Each binary's tests write the names its loader reads in Lambda mode
to receiver/testdata/lambda-env.json and worker/testdata/lambda-env.json (golden files); a
variable the code reads that the template lacks, or one the template sets that the code does
not read (a typo, a leftover), is a finding. `-x E9070:golden_root=DIR` reads the golden
files under DIR instead of the repository root.
"""

import json
import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GOLDEN = {sr.RECEIVER: "receiver/testdata/lambda-env.json", sr.WORKER: "worker/testdata/lambda-env.json"}


class Environment(CloudFormationLintRule):
    id = "E9070"
    shortdesc = "Each function's environment is what its Go code reads"
    description = "ReceiverFunction and WorkerFunction Environment.Variables equal the names in " + " and ".join(GOLDEN.values())
    tags = ["slackrelay", "lambda"]

    def __init__(self):
        super().__init__()
        self.config_definition = {"golden_root": {"default": "", "type": "string"}}
        self.configure()

    def match(self, cfn):
        root = self.config.get("golden_root") or REPO_ROOT
        out = []
        for fid, rel in GOLDEN.items():
            fn = sr.resource(cfn, fid, sr.FUNCTION)
            if fn is None:
                continue
            path = ["Resources", fid, "Properties", "Environment", "Variables"]
            try:
                with open(os.path.join(root, rel), encoding="utf-8") as f:
                    want = json.load(f)
            except (OSError, ValueError) as err:
                out.append(RuleMatch(path, f"cannot read the variable list for {fid} ({rel}: {err}); the Go tests write it"))
                continue
            have = sr.env_vars(fn)
            out += [RuleMatch(path, f"{fid} lacks environment variable {n}, which its code reads ({rel})") for n in want if n not in have]
            out += [RuleMatch(path + [n], f"{fid} sets {n}, which its code does not read ({rel}); remove it or read it") for n in have if n not in want]
        return out
