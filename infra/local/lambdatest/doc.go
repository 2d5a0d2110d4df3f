// Package lambdatest holds the Lambda-mode tests (part of `make test`): the real receiver
// and worker bootstraps, built as `make build` builds them, run under the Runtime API
// stand-in (infra/local/lambdaruntime) with the environment and timeouts of
// infra/template.yaml, against the local SQS, DynamoDB, SSM and Slack servers. They check
// what only Lambda mode shows: the event formats, the deadlines, init and its failures.
//
// Where a test changes the template's environment (a local Slack URL, a short cache age to
// reach a refresh, a variable taken away), it says so in Spec.Set or Spec.Unset.
package lambdatest
