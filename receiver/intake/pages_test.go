package intake

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recordPages is a Pages that records the request it was given and answers a page with a
// cookie and a header.
type recordPages struct{ got *Request }

func (p *recordPages) ServePage(_ context.Context, r *Request) Response {
	p.got = r
	return Response{Status: 200, ContentType: "text/html; charset=utf-8", Body: []byte("<p>page</p>"),
		Headers: map[string]string{"Cache-Control": "no-store"}, SetCookies: []string{"a=1; Path=/slack/oauth_redirect; HttpOnly", "b=2"}}
}

// The install pages get the query, the cookies and the address the request was made to, in
// both transports, and their Set-Cookie and headers reach the browser: API Gateway's payload v2
// carries cookies apart from the headers, both ways.
func TestPagesThroughBothTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, rawPath, base string
	}{
		{"$default stage", "http_api_default_stage.json", "/slack/oauth_redirect", "https://abc123.execute-api.eu-west-1.amazonaws.com"},
		{"named stage", "http_api_named_stage.json", "/prod/slack/oauth_redirect", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &recordPages{}
			h := newHandler(&fakeSender{}, staticSecrets(), nil)
			h.Pages = p
			ev := lambdaFixture(t, tc.file, tc.rawPath, "")
			ev.RequestContext.HTTP.Method = "GET"
			ev.RequestContext.DomainName = "abc123.execute-api.eu-west-1.amazonaws.com"
			ev.RawQueryString = "code=c1&state=s1"
			ev.Cookies = []string{"slackrelay_install_state=v1", "other=x"}
			out, err := h.HandleLambda(context.Background(), ev)
			if err != nil || out.StatusCode != 200 {
				t.Fatalf("status %d, %v", out.StatusCode, err)
			}
			got := Request{Method: p.got.Method, Path: p.got.Path, RawQuery: p.got.RawQuery, Cookies: p.got.Cookies, BaseURL: p.got.BaseURL}
			want := Request{Method: "GET", Path: PathOAuthRedirect, RawQuery: "code=c1&state=s1", Cookies: ev.Cookies, BaseURL: tc.base}
			if d := cmp.Diff(want, got, cmp.AllowUnexported(Request{}), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); d != "" {
				t.Errorf("request the page saw (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]string{"a=1; Path=/slack/oauth_redirect; HttpOnly", "b=2"}, out.Cookies); d != "" {
				t.Errorf("response cookies (-want +got):\n%s", d)
			}
			if out.Headers["cache-control"] != "no-store" || out.Headers["content-type"] != "text/html; charset=utf-8" {
				t.Errorf("headers %v", out.Headers)
			}
		})
	}

	t.Run("local server", func(t *testing.T) {
		t.Parallel()
		p := &recordPages{}
		h := newHandler(&fakeSender{}, staticSecrets(), nil)
		h.Pages = p
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+PathInstall+"?team=T1", nil)
		req.AddCookie(&http.Cookie{Name: "slackrelay_install_state", Value: "v1"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if p.got.RawQuery != "team=T1" || p.got.BaseURL != srv.URL || len(p.got.Cookies) != 1 || p.got.Cookies[0] != "slackrelay_install_state=v1" {
			t.Errorf("the page saw query %q, base %q, cookies %q", p.got.RawQuery, p.got.BaseURL, p.got.Cookies)
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) != 2 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Set-Cookie %q, Cache-Control %q", c, resp.Header.Get("Cache-Control"))
		}
	})
}
