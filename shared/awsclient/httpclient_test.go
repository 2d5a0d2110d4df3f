package awsclient

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// lateWriter is a connection whose writer pauses after each write, as the goroutine that
// writes a request does when a loaded machine deschedules it.
type lateWriter struct {
	net.Conn
	pause time.Duration
}

func (c lateWriter) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(c.pause)
	return n, err
}

// A server that answers at once while the request's writer is descheduled: the answer
// reaches the caller, the server sees the call once. (With the SDK's own body handling the
// connection is closed under the response being read and the SDK sends the call again.)
func TestHTTPClientKeepsTheResponseWhenTheWriterIsLate(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond) // the body comes after the writer has resumed
		_, _ = io.WriteString(w, `{"Attributes":{"ApproximateNumberOfMessages":"7"}}`)
	}))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	dialer := &net.Dialer{}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return lateWriter{Conn: c, pause: 100 * time.Millisecond}, nil
	}
	c := sqs.NewFromConfig(Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.HTTPClient = NewHTTPClient(&http.Client{Transport: tr})
	})

	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(srv.URL + "/000000000000/dlq")})
	if err != nil {
		t.Fatalf("get queue attributes: %v (calls the server saw: %d)", err, calls.Load())
	}
	if got := out.Attributes["ApproximateNumberOfMessages"]; got != "7" {
		t.Errorf("visible: got %q, want 7", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the server saw %d calls, want 1 (a response was lost and the call sent again)", n)
	}
}
