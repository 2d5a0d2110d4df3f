"""slackrelay's worker event source: from the events queue, reporting failures one by one,
and a visibility timeout that outlasts the worker.

Why ours: cfn-lint's E3505 asks only that the queue's VisibilityTimeout be at least 1 x the
function's Timeout, and only when both are literal numbers. The worker needs 6 x its timeout
plus the batching window (AWS's guidance for SQS event sources), for every value the
parameters allow: each allowed WorkerTimeoutSeconds with the visibility looked up for it in
Mappings, where an allowed value missing from the mapping is a finding too. cfn-lint also has
no notion of which queue the worker must read or that it reports batch item failures.
"""

import os
import sys

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # noqa: E402

import _slackrelay as sr  # noqa: E402


def worker_mappings(cfn):
    """[(logical id, properties)] of the event source mappings that invoke the worker."""
    return [
        (mid, sr.props(m))
        for mid, m in cfn.get_resources("AWS::Lambda::EventSourceMapping").items()
        if sr.same_ref(sr.props(m).get("FunctionName"), sr.WORKER)
        or sr.same_ref(sr.props(m).get("FunctionName"), sr.WORKER, "Arn")
    ]


class EventSource(CloudFormationLintRule):
    id = "E9020"
    shortdesc = "The worker is fed by the events queue"
    description = "An AWS::Lambda::EventSourceMapping invokes WorkerFunction, with EventSourceArn !GetAtt EventsQueue.Arn"
    tags = ["slackrelay", "lambda", "sqs"]

    def match(self, cfn):
        if sr.resource(cfn, sr.WORKER, sr.FUNCTION) is None:
            return []
        maps = worker_mappings(cfn)
        if not maps:
            return [RuleMatch(["Resources"], f"no AWS::Lambda::EventSourceMapping invokes {sr.WORKER}; add one from {sr.EVENTS}")]
        return [
            RuleMatch(["Resources", mid, "Properties", "EventSourceArn"], f"{mid} EventSourceArn is {sr.short(p.get('EventSourceArn'))}; set !GetAtt {sr.EVENTS}.Arn")
            for mid, p in maps
            if not sr.same_ref(p.get("EventSourceArn"), sr.EVENTS, "Arn")
        ]


class ReportBatchItemFailures(CloudFormationLintRule):
    id = "E9021"
    shortdesc = "The worker's event source reports batch item failures"
    description = "FunctionResponseTypes [ReportBatchItemFailures]: the worker reports failed messages one by one"
    tags = ["slackrelay", "lambda", "sqs"]

    def match(self, cfn):
        return [
            RuleMatch(["Resources", mid, "Properties", "FunctionResponseTypes"],
                      f"{mid} lacks FunctionResponseTypes [ReportBatchItemFailures]; without it one failed message retries the whole batch")
            for mid, p in worker_mappings(cfn)
            if "ReportBatchItemFailures" not in sr.as_list(p.get("FunctionResponseTypes"))
        ]


class VisibilityTimeout(CloudFormationLintRule):
    id = "E9022"
    shortdesc = "The events queue's VisibilityTimeout is at least 6 x the worker timeout + batching window"
    description = (
        "For every value the parameters involved allow: each of their AllowedValues (a "
        "VisibilityTimeout from Mappings is checked entry by entry), or the worst bound of a "
        "parameter used as the whole value (MaxValue for timeout and window, MinValue for the visibility)"
    )
    tags = ["slackrelay", "lambda", "sqs"]

    def match(self, cfn):
        worker = sr.resource(cfn, sr.WORKER, sr.FUNCTION)
        if worker is None:
            return []
        params = sr.parameters(cfn)
        terms = [  # [what, value, bound, path, how]
            ["worker Timeout", sr.props(worker).get("Timeout", 3), "max", ["Resources", sr.WORKER, "Properties", "Timeout"], ""],
            ["VisibilityTimeout", sr.props(sr.resource(cfn, sr.EVENTS, sr.QUEUE)).get("VisibilityTimeout", 30), "min",
             ["Resources", sr.EVENTS, "Properties", "VisibilityTimeout"], ""],
        ] + [
            ["batching window", p.get("MaximumBatchingWindowInSeconds", 0), "max", ["Resources", mid, "Properties", "MaximumBatchingWindowInSeconds"], ""]
            for mid, p in worker_mappings(cfn)
        ]
        # A parameter used as the whole value, without AllowedValues, stands for its worst bound.
        for t in terms:
            name = t[1].get("Ref") if isinstance(t[1], dict) else None
            if isinstance(name, str) and isinstance(params.get(name), dict) and "AllowedValues" not in params[name]:
                value, how = sr.resolve_number(t[1], params, t[2])
                if value is None:
                    return [RuleMatch(t[3], f"{t[0]}: {how}; give it a bound or AllowedValues")]
                t[1], t[4] = value, f" ({how})"
        # Any other parameter needs AllowedValues: each combination of them is tried.
        names = sorted(sr.parameter_refs([t[1] for t in terms], params))
        for name in names:
            if not isinstance(params[name].get("AllowedValues"), list):
                t = next(x for x in terms if name in sr.parameter_refs(x[1], params))
                return [RuleMatch(t[3], f"{t[0]} {sr.short(t[1])} depends on parameter {name}, which has no AllowedValues to try one by one")]
        out = []
        for values in sr.cases(names, params):
            given = ", ".join(f"{n}={values[n]}" for n in names)
            got = [self._value(cfn, t, values, given, out) for t in terms]
            if None in got:
                continue
            (timeout, _, t_how), (vis, vis_path, v_how), *windows = got
            window = max([0] + [w[0] for w in windows])
            want = 6 * timeout + window
            if vis < want:
                plus = f" + batching window {window} s" if window else ""
                out.append(RuleMatch(vis_path, (
                    f"{sr.EVENTS} VisibilityTimeout {vis} s{v_how} < 6 x worker Timeout {timeout} s{t_how}{plus} = {want} s"
                    + (f", with {given}" if given else "") + "; raise the visibility timeout")))
        return out

    @staticmethod
    def _value(cfn, t, values, given, out):
        """(number, path, how) of term t for the parameter values, or None (a finding added)."""
        what, v, _, path, how = t
        lookups = []
        with_values = f" with {given}" if given else ""
        try:
            value = sr.evaluate(v, cfn.template, values, lookups)
        except sr.EvalError as err:
            out.append(RuleMatch(path, f"{what}{with_values}: {err}"))
            return None
        n = sr.number(value)
        if n is None:
            out.append(RuleMatch(path, f"{what}{with_values} is {sr.short(value)}, not a number"))
            return None
        return n, (lookups[-1] if lookups else path), how
