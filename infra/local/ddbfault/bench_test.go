package ddbfault_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
)

// The proxy's cost per request: a GetItem posted straight to a trivial upstream, then
// through the proxy (parse, count, forward, record).
func BenchmarkProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"Item":{"pk":{"S":"evt:Ev1"}}}`))
	}))
	defer upstream.Close()
	p, err := ddbfault.Start(ddbfault.Options{Upstream: upstream.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	body, err := os.ReadFile("testdata/GetItem.json")
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, tc := range []struct{ name, url string }{{"direct", upstream.URL}, {"proxy", p.URL()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, tc.url+"/", bytes.NewReader(body))
				req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
				req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
