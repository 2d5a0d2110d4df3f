// Package lambdamode holds the Lambda-mode tests (part of `make test`): the real receiver
// and worker bootstraps, built as `make build` builds them, run under AWS's Lambda Runtime
// Interface Emulator (RIE, infra/local/lambdaworld) with the environment, timeouts and memory
// of infra/template.yaml, against the local SQS, DynamoDB, SSM and Slack servers. They check
// what only Lambda mode shows: the event formats, the deadlines, init and its failures. As in
// Lambda (and RIE), a function's init runs at its first invocation.
//
// Where a test changes the template's environment (a local Slack URL, a short cache age to
// reach a refresh, a variable taken away), it says so in Spec.Set or Spec.Unset.
package lambdamode
