package receiver

import "github.com/slackrelay/slackrelay/receiver/receiverconfig"

// DefaultMaxBodyBytes leaves room for the envelope around the body inside SQS's 1 MiB limit.
const DefaultMaxBodyBytes = receiverconfig.DefaultMaxBodyBytes

// MaxMessageBytes is SQS's message size limit; an envelope above it is refused with 413.
const MaxMessageBytes = 1 << 20
