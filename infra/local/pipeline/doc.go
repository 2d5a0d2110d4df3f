// Package pipeline tests the real worker whole, through its public packages only, as
// worker/cmd/worker runs it: worker.New with the framework's settings (workerconfig.Config)
// and the shipped bot (assistant.New, which reads its own settings), the engine it builds
// (App.Engine), and the poller (worker/poller) that stands in for Lambda's SQS event source
// mapping; against the local SQS and DynamoDB servers (localaws: each test on its own queues
// and table, its DynamoDB client behind a proxy that can go down) and the local Slack server
// (worker/fakeslack), with the local LLM server (worker/assistant/llm/fakellm) where a test
// needs a streamed model.
//
// The tests cover what a person sees of one event through that pipeline (one answer in the
// thread, duplicates and twins, failures dead-lettered with their reason and replayed,
// retries after backoff and Retry-After, crashes recovered, the journal down), the app
// manifest's scopes against the Slack calls the worker's code makes, the records an earlier
// release left in the table, and the batch concurrency benchmark `make bench` reports
// (BenchmarkBatchOfTenTwoSecondCalls).
//
// Everything is in the package's tests; this file only documents it.
package pipeline
