package awsclient

// Hand-written because no library offers it: a workaround for how the AWS SDK's request
// bodies and net/http's connection writer interact, which loses responses to calls SQS
// has already carried out.
//
// The SDK gives net/http each attempt's body in a wrapper that answers io.EOF once closed
// (its WriteTo returns that io.EOF as an error), and closes it as soon as the response
// headers are in. net/http sends the headers of a body it does not know to be in memory
// on their own, copies the body straight to the connection, and only then copies the rest
// of the body (normally nothing) to check that nothing follows. When the writing goroutine
// is descheduled between those two copies (any loaded machine; a local server answers in
// microseconds), the server has answered and the SDK has closed the body before the check
// runs: the check fails with io.EOF, net/http closes the connection, and reading the
// response body fails with "use of closed network connection". The SDK then sends the
// call again. For ReceiveMessage that leaves a batch hidden for the visibility timeout
// that no one has seen (a scan of the DLQ waits for it, up to 30 s); for SendMessage, a
// second copy of the message.
//
// HTTPClient gives each attempt a body of its own, read into memory first: net/http then
// writes headers and body in one go, and the SDK's Close no longer reaches what the
// connection writer reads.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the HTTP client of every AWS client slackrelay makes (Load and Local set it;
// BoundedRetry's clients use it too): it sends each request through
// another client with a private in-memory copy of the request body (see the top of this
// file for why). AWS API request bodies are small, so the copy costs little.
type HTTPClient struct {
	next aws.HTTPClient
}

var _ aws.HTTPClient = (*HTTPClient)(nil)

// NewHTTPClient wraps next (nil: the SDK's default client).
func NewHTTPClient(next aws.HTTPClient) *HTTPClient {
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	return &HTTPClient{next: next}
}

// Do sends r with a copy of its body; it closes r's body as a RoundTripper would.
func (c *HTTPClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if cerr := r.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	cp := r.Clone(r.Context())
	cp.ContentLength = int64(len(body))
	cp.GetBody = func() (io.ReadCloser, error) {
		if len(body) == 0 {
			return http.NoBody, nil
		}
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	cp.Body, _ = cp.GetBody()
	return c.next.Do(cp)
}
