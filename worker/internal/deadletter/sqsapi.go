// Package deadletter is the one home of dead-lettering: how the engine writes a dead letter
// (send.go: the failure attributes, fitted to SQS's size limit), and what the operators' DLQ
// tool (slackrelay-dlq) does to the dead-letter queue, without its command line: scan the DLQ while holding what it received (scan.go,
// hold.go), compare what a scan saw with the queue's own counts (counts.go), read the
// messages (message.go, filter.go, redact.go), put them back on the events queue
// (replay.go), delete what a scan holds (hold.go), write and read export files
// (exportfile.go) and remember what the last export of a queue saw and saved
// (exportrecord.go); its AWS clients send through
// awsclient.HTTPClient (shared/awsclient/httpclient.go).
//
// A scan "peeks": it receives messages with a short visibility timeout, keeps them hidden
// for as long as the scan and the command after it run, and makes them visible again at the
// end (also on errors and interrupts). Real SQS counts each such receive in
// ApproximateReceiveCount; the DLQ has no redrive policy of its own, so that count is
// informational only.
package deadletter

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSAPI is the part of the SQS client that scans and replays use; *sqs.Client satisfies it.
type SQSAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)
