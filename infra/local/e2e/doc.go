// Package e2e is slackrelay's end-to-end reliability suite: it drives the real receiver,
// worker and DLQ binaries in local mode over loopback (see package devstack) and checks, case
// by case, what Slack gets back, what is posted, what lands in the DLQ: nothing lost, nothing
// doubled. It runs in `make test` and alone with `make e2e`.
package e2e
