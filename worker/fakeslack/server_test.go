package fakeslack

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

const testToken = "xoxb-test-token"

// newTest starts a Server on loopback and returns it with its base URL; the test's cleanup
// closes it. Unless opts say otherwise, the token holds the repository manifest's scopes.
func newTest(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	s := New(opts)
	base, err := s.Start("")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, base
}

type apiResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r apiResp) ok() bool { b, _ := r.body["ok"].(bool); return b }
func (r apiResp) str(k string) string {
	v, _ := r.body[k].(string)
	return v
}

func doReq(t *testing.T, req *http.Request) apiResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResp{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
	}
	return out
}

// form posts the way slack-go does: form-encoded, token in the form.
func form(t *testing.T, base, method string, vals url.Values) apiResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(base, "/")+"/api/"+method,
		strings.NewReader(vals.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doReq(t, req)
}

// postJSON posts a JSON body with a Bearer token.
func postJSON(t *testing.T, base, method, token string, body any) apiResp {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(base, "/")+"/api/"+method, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doReq(t, req)
}

func vals(kv ...string) url.Values {
	v := url.Values{"token": {testToken}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestAuthTest(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{BotUserID: "U9", TeamID: "T9"})
	r := form(t, base, "auth.test", vals())
	if !r.ok() || r.str("user_id") != "U9" || r.str("team_id") != "T9" || r.str("bot_id") != "BBOT" ||
		r.str("url") == "" || r.str("team") == "" || r.str("user") == "" {
		t.Fatalf("auth.test = %v, want ok with user_id U9, team_id T9, bot_id BBOT, url, team, user", r.body)
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	tests := []struct {
		name string
		do   func() apiResp
		want string
	}{
		{"wrong form token", func() apiResp {
			return form(t, base, "chat.postMessage", url.Values{"token": {"xoxb-wrong"}, "channel": {"C1"}, "text": {"x"}})
		}, "invalid_auth"},
		{"wrong bearer", func() apiResp {
			return postJSON(t, base, "chat.postMessage", "xoxb-wrong", map[string]any{"channel": "C1", "text": "x"})
		}, "invalid_auth"},
		{"no token", func() apiResp {
			return form(t, base, "auth.test", url.Values{})
		}, "not_authed"},
		{"no token, unknown method", func() apiResp {
			return form(t, base, "files.upload", url.Values{})
		}, "not_authed"},
	}
	for _, tc := range tests {
		r := tc.do()
		if r.status != http.StatusOK || r.ok() || r.str("error") != tc.want {
			t.Errorf("%s: got status %d body %v, want 200 error %s", tc.name, r.status, r.body, tc.want)
		}
		if strings.Contains(r.raw, "xoxb") {
			t.Errorf("%s: response leaks a token: %s", tc.name, r.raw)
		}
	}
	if n := len(s.Posts()); n != 0 {
		t.Fatalf("got %d posts recorded from unauthenticated calls, want 0", n)
	}
	if got := s.Calls("chat.postMessage"); got != 2 {
		t.Fatalf("Calls(chat.postMessage) = %d, want 2", got)
	}
}

func TestStartBindsLoopbackAndClose(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	if got, want := s.ResponseURL("x"), "/response/x"; got != want {
		t.Fatalf("ResponseURL before Start = %q, want %q", got, want)
	}
	base, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || !strings.HasSuffix(base, "/") {
		t.Fatalf("base URL = %q, want http://127.0.0.1:PORT/", base)
	}
	if s.APIURL() != base+"api/" || s.ResponseURL("a b") != base+"response/a%20b" {
		t.Fatalf("APIURL %q ResponseURL %q, want %q and %q", s.APIURL(), s.ResponseURL("a b"), base+"api/", base+"response/a%20b")
	}
	if _, err := s.Start(""); err == nil {
		t.Fatal("second Start succeeded, want an error")
	}
	if r := form(t, base, "auth.test", url.Values{"token": {"anything"}}); !r.ok() {
		t.Fatalf("auth.test with no expected token = %v, want ok", r.body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The freed port may already be another test's: only this instance answering is a failure.
	if err := loopback.CheckStopped(s.srv); err != nil {
		t.Fatal(err)
	}

	// A host-less address still binds loopback.
	s2 := New(Options{})
	base2, err := s2.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !strings.HasPrefix(base2, "http://127.0.0.1:") {
		t.Fatalf("Start(:0) = %q, want http://127.0.0.1:PORT/", base2)
	}
}

func TestStartFailsWithoutManifest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, manifest, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.yaml"), "read the app manifest"},
		{"not yaml", filepath.Join("testdata", "manifest-broken.yaml"), "parse the app manifest"},
		{"no bot scopes", filepath.Join("testdata", "manifest-no-bot-scopes.yaml"), "lists no oauth_config.scopes.bot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(Options{Manifest: tc.manifest})
			base, err := s.Start("")
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start = %q, nil; want an error containing %q", base, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConcurrentPosts(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	const n = 40
	var wg sync.WaitGroup
	tsSeen := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := url.Values{"token": {testToken}, "channel": {"C1"}, "text": {"m"}}
			resp, err := http.PostForm(base+"api/chat.postMessage", v)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out struct {
				OK bool   `json:"ok"`
				TS string `json:"ts"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !out.OK {
				t.Errorf("post %d: got %v %+v, want ok", i, err, out)
			}
			tsSeen <- out.TS
		}()
	}
	wg.Wait()
	close(tsSeen)
	uniq := map[string]bool{}
	for ts := range tsSeen {
		uniq[ts] = true
	}
	if len(uniq) != n || len(s.Posts()) != n || s.Calls("chat.postMessage") != n {
		t.Fatalf("got unique ts %d, posts %d, calls %d; want %d each", len(uniq), len(s.Posts()), s.Calls("chat.postMessage"), n)
	}
}
