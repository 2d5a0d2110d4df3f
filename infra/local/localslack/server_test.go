package localslack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "xoxb-test-token"

// newTest serves a Server through httptest and returns both.
func newTest(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.SetBaseURL(ts.URL)
	return s, ts
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

func TestAuthTest(t *testing.T) {
	t.Parallel()
	_, ts := newTest(t, Options{BotUserID: "U9", TeamID: "T9"})
	r := form(t, ts.URL, "auth.test", vals())
	if !r.ok() || r.str("user_id") != "U9" || r.str("team_id") != "T9" || r.str("bot_id") != "BBOT" ||
		r.str("url") == "" || r.str("team") == "" || r.str("user") == "" {
		t.Fatalf("auth.test = %v", r.body)
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	tests := []struct {
		name string
		do   func() apiResp
		want string
	}{
		{"wrong form token", func() apiResp {
			return form(t, ts.URL, "chat.postMessage", url.Values{"token": {"xoxb-wrong"}, "channel": {"C1"}, "text": {"x"}})
		}, "invalid_auth"},
		{"wrong bearer", func() apiResp {
			return postJSON(t, ts.URL, "chat.postMessage", "xoxb-wrong", map[string]any{"channel": "C1", "text": "x"})
		}, "invalid_auth"},
		{"no token", func() apiResp {
			return form(t, ts.URL, "auth.test", url.Values{})
		}, "not_authed"},
	}
	for _, tc := range tests {
		r := tc.do()
		if r.status != http.StatusOK || r.ok() || r.str("error") != tc.want {
			t.Errorf("%s: status %d body %v, want error %s", tc.name, r.status, r.body, tc.want)
		}
		if strings.Contains(r.raw, "xoxb") {
			t.Errorf("%s: response leaks a token: %s", tc.name, r.raw)
		}
	}
	if n := len(s.Posts()); n != 0 {
		t.Fatalf("%d posts recorded from unauthenticated calls", n)
	}
	if got := s.Calls("chat.postMessage"); got != 2 {
		t.Fatalf("Calls(chat.postMessage) = %d, want 2", got)
	}
}

func TestPostMessage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var outMu sync.Mutex
	now := time.Unix(1_700_000_123, 0).UTC()
	s, ts := newTest(t, Options{Out: lockedWriter{&outMu, &out}, Now: func() time.Time { return now }})

	meta := `{"event_type":"relay_job","event_payload":{"job_id":"j-1","attempt":2}}`
	r1 := form(t, ts.URL, "chat.postMessage", vals("channel", "C123", "text", "hello world", "metadata", meta))
	if !r1.ok() || r1.str("channel") != "C123" || r1.str("ts") == "" {
		t.Fatalf("form post = %v", r1.body)
	}
	msg, _ := r1.body["message"].(map[string]any)
	if msg["text"] != "hello world" || msg["ts"] != r1.str("ts") || msg["bot_id"] != "BBOT" || msg["user"] != "UBOT" {
		t.Fatalf("message = %v", msg)
	}
	r2 := postJSON(t, ts.URL, "chat.postMessage", testToken, map[string]any{
		"channel": "C123", "text": "in thread", "thread_ts": r1.str("ts"),
		"blocks":   []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "hi"}}},
		"metadata": map[string]any{"event_type": "relay_reply", "event_payload": map[string]any{"k": "v"}},
	})
	if !r2.ok() {
		t.Fatalf("json post = %v", r2.body)
	}
	if !(r2.str("ts") > r1.str("ts")) {
		t.Fatalf("ts not increasing: %q then %q", r1.str("ts"), r2.str("ts"))
	}
	if m, _ := r2.body["message"].(map[string]any); m["thread_ts"] != r1.str("ts") {
		t.Fatalf("reply message = %v", m)
	}
	form(t, ts.URL, "chat.postMessage", vals("channel", "C999", "text", "elsewhere"))

	posts := s.Posts()
	if len(posts) != 3 {
		t.Fatalf("posts = %+v", posts)
	}
	p := posts[0]
	if p.Method != "chat.postMessage" || p.Channel != "C123" || p.Text != "hello world" || p.TS != r1.str("ts") ||
		p.ThreadTS != "" || !p.At.Equal(now) {
		t.Fatalf("post[0] = %+v", p)
	}
	if p.Metadata == nil || p.Metadata.EventType != "relay_job" || p.Metadata.Payload["job_id"] != "j-1" ||
		p.Metadata.Payload["attempt"] != float64(2) {
		t.Fatalf("post[0].Metadata = %+v", p.Metadata)
	}
	p = posts[1]
	if p.ThreadTS != r1.str("ts") || p.Metadata == nil || p.Metadata.EventType != "relay_reply" || len(p.Blocks) == 0 {
		t.Fatalf("post[1] = %+v", p)
	}
	if got := s.PostsFor("C123"); len(got) != 2 {
		t.Fatalf("PostsFor(C123) = %d posts", len(got))
	}
	if got := s.PostsFor("C999"); len(got) != 1 || got[0].Text != "elsewhere" {
		t.Fatalf("PostsFor(C999) = %+v", got)
	}

	outMu.Lock()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	outMu.Unlock()
	if len(lines) != 3 {
		t.Fatalf("Out lines = %q", lines)
	}
	want := "slack ▸ #C123 (thread " + r1.str("ts") + ") bot: in thread"
	if !strings.HasPrefix(lines[1], want) {
		t.Fatalf("Out line = %q, want prefix %q", lines[1], want)
	}
	if strings.Contains(out.String(), testToken) {
		t.Fatal("Out leaks the token")
	}
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

func TestPostMessageErrors(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{MissingChannels: []string{"CGONE"}, ArchivedChannels: []string{"COLD"}})
	tests := []struct {
		name string
		v    url.Values
		want string
	}{
		{"no channel", vals("text", "x"), "channel_not_found"},
		{"missing channel", vals("channel", "CGONE", "text", "x"), "channel_not_found"},
		{"archived", vals("channel", "COLD", "text", "x"), "is_archived"},
		{"too long", vals("channel", "C1", "text", strings.Repeat("é", MaxTextLength+1)), "msg_too_long"},
		{"no text", vals("channel", "C1"), "no_text"},
		{"bad metadata", vals("channel", "C1", "text", "x", "metadata", "{nope"), "invalid_metadata_format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := form(t, ts.URL, "chat.postMessage", tc.v)
			if r.status != http.StatusOK || r.ok() || r.str("error") != tc.want {
				t.Fatalf("status %d body %v, want %s", r.status, r.body, tc.want)
			}
		})
	}
	if r := form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", strings.Repeat("é", MaxTextLength))); !r.ok() {
		t.Fatalf("text of exactly MaxTextLength rejected: %v", r.body)
	}
	if r := form(t, ts.URL, "files.upload", vals()); r.status != http.StatusOK || r.str("error") != "unknown_method" {
		t.Fatalf("unknown method: %d %v", r.status, r.body)
	}
	if got := len(s.Posts()); got != 1 {
		t.Fatalf("posts = %d, want 1", got)
	}
	if got := s.Calls("chat.postMessage"); got != len(tests)+1 {
		t.Fatalf("Calls = %d, want %d", got, len(tests)+1)
	}
}

func TestUpdateAndEphemeral(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	r := form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "working…"))
	u := form(t, ts.URL, "chat.update", vals("channel", "C1", "ts", r.str("ts"), "text", "done"))
	if !u.ok() || u.str("ts") != r.str("ts") || u.str("text") != "done" {
		t.Fatalf("chat.update = %v", u.body)
	}
	if u := form(t, ts.URL, "chat.update", vals("channel", "C1", "ts", "1.2", "text", "x")); u.str("error") != "message_not_found" {
		t.Fatalf("update of unknown ts = %v", u.body)
	}
	rep := form(t, ts.URL, "conversations.replies", vals("channel", "C1", "ts", r.str("ts")))
	msgs, _ := rep.body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "done" {
		t.Fatalf("replies after update = %v", rep.body)
	}
	e := form(t, ts.URL, "chat.postEphemeral", vals("channel", "C1", "user", "U7", "text", "only you"))
	if !e.ok() || e.str("message_ts") == "" {
		t.Fatalf("chat.postEphemeral = %v", e.body)
	}
	posts := s.Posts()
	if len(posts) != 2 || posts[1].Method != "chat.postEphemeral" || posts[1].User != "U7" || posts[1].Text != "only you" {
		t.Fatalf("posts = %+v", posts)
	}
}

func TestReactions(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	steps := []struct {
		method, name, want string // want "" means ok
	}{
		{"reactions.add", "eyes", ""},
		{"reactions.add", "eyes", "already_reacted"},
		{"reactions.add", ":white_check_mark:", ""},
		{"reactions.remove", "eyes", ""},
		{"reactions.remove", "eyes", "no_reaction"},
		{"reactions.remove", "x", "no_reaction"},
	}
	for i, st := range steps {
		r := form(t, ts.URL, st.method, vals("channel", "C1", "timestamp", "1700000000.000100", "name", st.name))
		if st.want == "" && !r.ok() || st.want != "" && r.str("error") != st.want {
			t.Fatalf("step %d %s %s = %v, want %q", i, st.method, st.name, r.body, st.want)
		}
	}
	want := []Reaction{{Channel: "C1", Timestamp: "1700000000.000100", Name: "white_check_mark"}}
	if got := s.Reactions(); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("Reactions() = %+v, want %+v", got, want)
	}
	if r := form(t, ts.URL, "reactions.add", vals("channel", "", "timestamp", "1.1", "name", "x")); r.str("error") != "channel_not_found" {
		t.Fatalf("reaction without channel = %v", r.body)
	}
	if got := s.Calls("reactions.add"); got != 3+1 { // 3 steps + the channel-less call
		t.Fatalf("Calls(reactions.add) = %d", got)
	}
}

func TestConversationsReplies(t *testing.T) {
	t.Parallel()
	_, ts := newTest(t, Options{})
	parent := form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "parent",
		"metadata", `{"event_type":"relay_job","event_payload":{"job_id":"j-9"}}`))
	pts := parent.str("ts")
	form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "reply 1", "thread_ts", pts,
		"metadata", `{"event_type":"relay_reply","event_payload":{"n":1}}`))
	form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "other"))
	form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "reply 2", "thread_ts", pts))
	form(t, ts.URL, "reactions.add", vals("channel", "C1", "timestamp", pts, "name", "eyes"))

	r := form(t, ts.URL, "conversations.replies", vals("channel", "C1", "ts", pts, "include_all_metadata", "true"))
	msgs, _ := r.body["messages"].([]any)
	if !r.ok() || len(msgs) != 3 {
		t.Fatalf("replies = %v", r.body)
	}
	first := msgs[0].(map[string]any)
	if first["text"] != "parent" || first["reply_count"] != float64(2) || first["thread_ts"] != pts {
		t.Fatalf("parent = %v", first)
	}
	md, _ := first["metadata"].(map[string]any)
	if md["event_type"] != "relay_job" || md["event_payload"].(map[string]any)["job_id"] != "j-9" {
		t.Fatalf("parent metadata = %v", first["metadata"])
	}
	if rs, _ := first["reactions"].([]any); len(rs) != 1 {
		t.Fatalf("parent reactions = %v", first["reactions"])
	}
	second := msgs[1].(map[string]any)
	if second["text"] != "reply 1" || second["metadata"].(map[string]any)["event_type"] != "relay_reply" {
		t.Fatalf("reply = %v", second)
	}
	if msgs[2].(map[string]any)["text"] != "reply 2" {
		t.Fatalf("reply 2 = %v", msgs[2])
	}

	// Without include_all_metadata, no metadata; JSON + bearer works too.
	r = postJSON(t, ts.URL, "conversations.replies", testToken, map[string]any{"channel": "C1", "ts": pts})
	msgs, _ = r.body["messages"].([]any)
	if len(msgs) != 3 || msgs[0].(map[string]any)["metadata"] != nil {
		t.Fatalf("replies without metadata = %v", r.body)
	}
	if r := form(t, ts.URL, "conversations.replies", vals("channel", "C1", "ts", "1.000001")); r.str("error") != "thread_not_found" {
		t.Fatalf("unknown thread = %v", r.body)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	post := func() apiResp { return form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "x")) }
	tests := []struct {
		name   string
		inject func()
		check  func(t *testing.T, r apiResp)
	}{
		{"FailNext", func() { s.FailNext("chat.postMessage", 2, "internal_error") }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusOK || r.ok() || r.str("error") != "internal_error" {
				t.Fatalf("got %d %v", r.status, r.body)
			}
		}},
		{"RateLimitNext", func() { s.RateLimitNext("chat.postMessage", 2, 1500*time.Millisecond) }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" || r.str("error") != "ratelimited" {
				t.Fatalf("got %d Retry-After=%q %v", r.status, r.header.Get("Retry-After"), r.body)
			}
		}},
		{"FailHTTPNext", func() { s.FailHTTPNext("chat.postMessage", 2, http.StatusServiceUnavailable) }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusServiceUnavailable || r.raw == "" || r.body != nil {
				t.Fatalf("got %d %q", r.status, r.raw)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			tc.inject()
			// Other methods are unaffected.
			if r := form(t, ts.URL, "auth.test", vals()); !r.ok() {
				t.Fatalf("auth.test during fault = %v", r.body)
			}
			tc.check(t, post())
			tc.check(t, post())
			if r := post(); !r.ok() {
				t.Fatalf("no recovery: %d %v", r.status, r.body)
			}
			if got := len(s.Posts()); got != 1 {
				t.Fatalf("posts = %d, want 1 (faulted calls must not be recorded)", got)
			}
			if got := s.Calls("chat.postMessage"); got != 3 {
				t.Fatalf("Calls = %d, want 3", got)
			}
		})
	}
}

func TestRetryAfterAtLeastOne(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	s.RateLimitNext("reactions.add", 1, 0)
	r := form(t, ts.URL, "reactions.add", vals("channel", "C1", "timestamp", "1.1", "name", "x"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After=%q", r.status, r.header.Get("Retry-After"))
	}
	// Faults queue in order.
	s.FailNext("auth.test", 1, "a")
	s.FailHTTPNext("auth.test", 1, 502)
	if r := form(t, ts.URL, "auth.test", vals()); r.str("error") != "a" {
		t.Fatalf("first fault = %v", r.body)
	}
	if r := form(t, ts.URL, "auth.test", vals()); r.status != 502 {
		t.Fatalf("second fault status = %d", r.status)
	}
}

func TestResponseURL(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	u := s.ResponseURL("cmd-42")
	if !strings.HasPrefix(u, ts.URL+"/response/") {
		t.Fatalf("ResponseURL = %q", u)
	}
	send := func(body string) *http.Response {
		resp, err := http.Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := send(`{"text":"queued ✓","response_type":"ephemeral","replace_original":true}`); resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if resp := send(`{"response_type":"in_channel"}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty text status = %d", resp.StatusCode)
	}
	s.FailHTTPNext(ResponseURLMethod, 1, 500)
	if resp := send(`{"text":"x"}`); resp.StatusCode != 500 {
		t.Fatalf("faulted status = %d", resp.StatusCode)
	}
	posts := s.Posts()
	if len(posts) != 1 {
		t.Fatalf("posts = %+v", posts)
	}
	p := posts[0]
	if p.Method != ResponseURLMethod || p.ResponseID != "cmd-42" || p.Text != "queued ✓" ||
		p.ResponseType != "ephemeral" || !p.ReplaceOriginal {
		t.Fatalf("post = %+v", p)
	}
	if got := s.Calls(ResponseURLMethod); got != 3 {
		t.Fatalf("Calls(response_url) = %d", got)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET response_url = %d", resp.StatusCode)
	}
}

func TestWaitPosts(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitPosts(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitPosts timeout err = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.WaitPosts(ctx, 2)
	}()
	form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "1"))
	form(t, ts.URL, "chat.postMessage", vals("channel", "C1", "text", "2"))
	if err := <-done; err != nil {
		t.Fatalf("WaitPosts = %v", err)
	}
	if err := s.WaitPosts(context.Background(), 2); err != nil {
		t.Fatalf("WaitPosts already satisfied = %v", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); _ = s.Close() }()
	if err := s.WaitPosts(context.Background(), 99); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitPosts after Close = %v", err)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s := New(Options{Token: testToken})
	base, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Drive the server from another goroutine, as another process would.
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			c := &Client{BaseURL: base}
			if err := c.Fail(ctx, "chat.postMessage", 1, "fatal_error"); err != nil {
				return err
			}
			if err := c.RateLimit(ctx, "chat.postMessage", 1, 3*time.Second); err != nil {
				return err
			}
			if err := c.FailHTTP(ctx, "chat.postMessage", 1, 503); err != nil {
				return err
			}
			if err := c.FailHTTP(ctx, "chat.postMessage", 1, 200); err == nil {
				return errors.New("FailHTTP with status 200 accepted")
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.str("error") != "fatal_error" {
		t.Fatalf("1st = %d %v", r.status, r.body)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("2nd = %d %v", r.status, r.header)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != 503 {
		t.Fatalf("3rd = %d", r.status)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "through",
		"metadata", `{"event_type":"e","event_payload":{"a":"b"}}`)); !r.ok() {
		t.Fatalf("4th = %v", r.body)
	}
	form(t, base, "reactions.add", vals("channel", "C1", "timestamp", "1.1", "name", "eyes"))

	type result struct {
		posts []Post
		calls int
		rs    []Reaction
		err   error
	}
	resc := make(chan result, 1)
	go func() {
		c := &Client{BaseURL: strings.TrimSuffix(base, "/"), HTTP: &http.Client{Timeout: 5 * time.Second}}
		var res result
		if res.posts, res.err = c.WaitPosts(ctx, 1); res.err != nil {
			resc <- res
			return
		}
		if res.calls, res.err = c.Calls(ctx, "chat.postMessage"); res.err != nil {
			resc <- res
			return
		}
		res.rs, res.err = c.Reactions(ctx)
		resc <- res
	}()
	res := <-resc
	if res.err != nil {
		t.Fatal(res.err)
	}
	if len(res.posts) != 1 || res.posts[0].Text != "through" || res.posts[0].Metadata == nil ||
		res.posts[0].Metadata.Payload["a"] != "b" || res.posts[0].TS == "" {
		t.Fatalf("control posts = %+v", res.posts)
	}
	if res.calls != 4 {
		t.Fatalf("control calls = %d, want 4", res.calls)
	}
	if len(res.rs) != 1 || res.rs[0].Name != "eyes" {
		t.Fatalf("control reactions = %+v", res.rs)
	}

	c := &Client{BaseURL: base}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	posts, err := c.Posts(ctx)
	if err != nil || len(posts) != 0 || posts == nil {
		t.Fatalf("posts after reset = %v, %v", posts, err)
	}
	if n, err := c.Calls(ctx, "chat.postMessage"); err != nil || n != 0 {
		t.Fatalf("calls after reset = %d, %v", n, err)
	}
	if len(s.Reactions()) != 0 {
		t.Fatal("reactions survive reset")
	}
	short, cancelShort := context.WithTimeout(ctx, 60*time.Millisecond)
	defer cancelShort()
	if _, err := c.WaitPosts(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client WaitPosts timeout = %v", err)
	}
}

func TestStartBindsLoopbackAndClose(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	base, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || !strings.HasSuffix(base, "/") {
		t.Fatalf("base URL = %q", base)
	}
	if s.URL() != base || s.APIURL() != base+"api/" || s.ResponseURL("x") != base+"response/x" {
		t.Fatalf("URL %q APIURL %q ResponseURL %q", s.URL(), s.APIURL(), s.ResponseURL("x"))
	}
	if _, err := s.Start(""); err == nil {
		t.Fatal("second Start succeeded")
	}
	if r := form(t, base, "auth.test", url.Values{"token": {"anything"}}); !r.ok() {
		t.Fatalf("auth.test with no expected token = %v", r.body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("server still accepting connections after Close")
	}

	// A host-less address still binds loopback.
	s2 := New(Options{})
	base2, err := s2.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !strings.HasPrefix(base2, "http://127.0.0.1:") {
		t.Fatalf("Start(:0) = %q", base2)
	}
}

func TestConcurrentPosts(t *testing.T) {
	t.Parallel()
	s, ts := newTest(t, Options{})
	const n = 40
	var wg sync.WaitGroup
	tsSeen := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := url.Values{"token": {testToken}, "channel": {"C1"}, "text": {"m"}}
			resp, err := http.PostForm(ts.URL+"/api/chat.postMessage", v)
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
				t.Errorf("post %d: %v %+v", i, err, out)
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
		t.Fatalf("unique ts %d, posts %d, calls %d; want %d", len(uniq), len(s.Posts()), s.Calls("chat.postMessage"), n)
	}
}
