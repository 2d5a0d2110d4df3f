package awstest

import (
	"net/url"
	"testing"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// NewProxy puts a loopback.Proxy in front of endpoint ("http://127.0.0.1:N"), closed when the
// test ends: SetDown(true) makes SQS or DynamoDB unavailable, as an outage would, without
// losing the server's state.
func NewProxy(t testing.TB, endpoint string) *loopback.Proxy {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("proxy target %q: %v", endpoint, err)
	}
	p, err := loopback.StartProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
