package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/metrics"
)

// failingStore is a store over f with a settable clock, a fixed jitter and its log lines
// and metric lines captured.
type failingStore struct {
	*Store
	f       *fakeSSM
	clock   *clock
	logs    *bytes.Buffer
	metrics *bytes.Buffer
}

func newFailingStore(t *testing.T, f *fakeSSM, jitter float64, tweak func(*Options)) *failingStore {
	t.Helper()
	fs := &failingStore{f: f, clock: &clock{t: time.Unix(1_700_000_000, 0)}, logs: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	opts := Options{
		Now: fs.clock.now, Rand: func() float64 { return jitter },
		Log:     slog.New(slog.NewJSONHandler(fs.logs, nil)),
		Metrics: metrics.New(fs.metrics, "test"),
	}
	if tweak != nil {
		tweak(&opts)
	}
	fs.Store = NewSSM(f, map[string]string{"signing_secret": "/p/sign"}, opts)
	return fs
}

type logLine struct {
	Level    string   `json:"level"`
	Msg      string   `json:"msg"`
	Params   []string `json:"params"`
	Error    string   `json:"error"`
	Failures int      `json:"failed_attempts"`
	RetryIn  string   `json:"retry_in"`
	Serving  string   `json:"serving"`
}

func (fs *failingStore) lines(t *testing.T) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range bytes.Split(bytes.TrimSpace(fs.logs.Bytes()), []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		var l logLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("log line %s: %v", raw, err)
		}
		out = append(out, l)
	}
	return out
}

// A refresh that fails serves the last good value, says so once (WARN and a metric, never
// the value) and does not call SSM again before its backoff has passed.
func TestFailedRefreshServesLastGoodValue(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/p/sign": "good-secret"}}
	fs := newFailingStore(t, f, 0, nil) // jitter 0: the backoff is half of RetryMin's doubling
	ctx := context.Background()
	if v, err := fs.Get(ctx, "signing_secret"); err != nil || v != "good-secret" {
		t.Fatalf("Get = %q, %v; want the value", v, err)
	}
	fs.clock.t = fs.clock.t.Add(DefaultMaxAge + time.Second)
	f.setErr(errors.New("ThrottlingException: rate exceeded"))
	for i := 0; i < 50; i++ {
		if v, err := fs.Get(ctx, "signing_secret"); err != nil || v != "good-secret" {
			t.Fatalf("Get %d during the outage = %q, %v; want the last good value", i, v, err)
		}
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("GetParameters called %d times, want 2 (the load, one failed refresh)", n)
	}
	lines := fs.lines(t)
	if len(lines) != 1 || lines[0].Level != "WARN" || lines[0].Serving != "stale" || lines[0].Failures != 1 ||
		!strings.Contains(lines[0].Error, "ThrottlingException") || lines[0].RetryIn != "500ms" {
		t.Fatalf("log lines %+v; want one WARN serving stale, failed_attempts 1, retry_in 500ms", lines)
	}
	if strings.Contains(fs.logs.String(), "good-secret") {
		t.Fatal("a log line holds the secret value")
	}
	if m := fs.metrics.String(); strings.Count(m, `"`+MetricLoadFailures+`":1`) != 1 || !strings.Contains(m, `"Serving":"stale"`) {
		t.Fatalf("metrics %s: want one %s with Serving stale", m, MetricLoadFailures)
	}
	// After the backoff SSM is asked again; once it answers, fresh values are served and
	// the recovery is logged.
	fs.clock.t = fs.clock.t.Add(500 * time.Millisecond)
	f.setErr(nil)
	f.set("/p/sign", "rotated")
	if v, _ := fs.Get(ctx, "signing_secret"); v != "rotated" {
		t.Fatalf("after the backoff Get = %q, want the new value", v)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("GetParameters called %d times, want 3", n)
	}
	if lines := fs.lines(t); len(lines) != 2 || lines[1].Level != "INFO" || lines[1].Failures != 1 {
		t.Fatalf("log lines %+v; want an INFO line about the recovery", lines)
	}
}

// Without a value, failed loads are remembered: Get answers with a *LoadError from memory
// until the backoff has passed, and the backoff grows per failure up to RetryMax.
func TestFailedLoadsBackOff(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{}, err: errors.New("connection refused")}
	fs := newFailingStore(t, f, 0.999, func(o *Options) { o.RetryMin, o.RetryMax = time.Second, 4*time.Second })
	ctx := context.Background()
	// With jitter near 1 the waits are just under 1s, 2s, 4s, 4s: the doubling, capped.
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		for i := 0; i < 50; i++ {
			_, err := fs.Get(ctx, "signing_secret")
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
				t.Fatalf("Get = %v; want a *LoadError matching ErrUnavailable, not ErrNotFound", err)
			}
			if le.Failures != attempt+1 || le.Params[0] != "/p/sign" || le.RetryIn <= 0 || le.RetryIn > wait {
				t.Fatalf("LoadError %+v; want failures %d, the parameter, a retry within %s", le, attempt+1, wait)
			}
		}
		if n := int(f.calls.Load()); n != attempt+1 {
			t.Fatalf("after attempt %d: GetParameters called %d times, want %d", attempt+1, n, attempt+1)
		}
		if ok, err := fs.ForceRefresh(ctx); ok || err != nil {
			t.Fatalf("ForceRefresh while backing off = %v, %v; want skipped", ok, err)
		}
		fs.clock.t = fs.clock.t.Add(wait - 10*time.Millisecond)
		_, _ = fs.Get(ctx, "signing_secret")
		if n := int(f.calls.Load()); n != attempt+1 {
			t.Fatalf("a call before the backoff (%s, jittered to 0.999 of it) had passed", wait)
		}
		fs.clock.t = fs.clock.t.Add(10 * time.Millisecond)
	}
}

// A missing parameter is a configuration error: ERROR on its first failure, WARN after;
// the error names the parameter and matches ErrNotFound.
func TestMissingParameterIsDistinct(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{}}
	fs := newFailingStore(t, f, 0, nil)
	ctx := context.Background()
	err := fs.Preload(ctx)
	var nf *NotFoundError
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &nf) || len(nf.Params) != 1 || nf.Params[0] != "/p/sign" {
		t.Fatalf("Preload = %v; want ErrNotFound and ErrUnavailable, naming /p/sign", err)
	}
	if _, err := fs.Get(ctx, "signing_secret"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get during the backoff = %v, want the remembered ErrNotFound", err)
	}
	fs.clock.t = fs.clock.t.Add(DefaultRetryMax)
	_, _ = fs.Get(ctx, "signing_secret")
	lines := fs.lines(t)
	if len(lines) != 2 || lines[0].Level != "ERROR" || lines[1].Level != "WARN" || lines[0].Serving != "none" {
		t.Fatalf("log lines %+v; want ERROR then WARN, serving none", lines)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("GetParameters called %d times, want 2", n)
	}
}

// Every call is bounded by the caller's deadline less the reserve, or by Timeout.
func TestCallsAreBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: none
		want     time.Duration
	}{
		{"caller deadline less the reserve", 500 * time.Millisecond, 250 * time.Millisecond},
		{"timeout when the caller has no deadline", 0, 300 * time.Millisecond},
		{"timeout when it comes first", 5 * time.Second, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSSM{hang: true}
			s := NewSSM(f, map[string]string{"k": "/p"}, Options{Timeout: 300 * time.Millisecond, Reserve: 250 * time.Millisecond})
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := s.Get(ctx, "k")
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Get = %v; want ErrUnavailable from the deadline", err)
			}
			if took < tc.want-20*time.Millisecond || took > tc.want+150*time.Millisecond {
				t.Fatalf("Get took %s; want about %s", took, tc.want)
			}
			t.Logf("a hanging SSM call returned after %s (bound %s)", took.Round(time.Millisecond), tc.want)
		})
	}
}

// A caller with less time than the reserve gets an error without a call, and that is not
// counted as a failure of SSM; nor is a call its caller abandoned.
func TestNoCallWithoutTimeAndCallerGoneIsNoFailure(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/p": "v"}, hang: true}
	s := NewSSM(f, map[string]string{"k": "/p"}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) || f.calls.Load() != 0 {
		t.Fatalf("Get with 100ms left = %v after %d calls; want ErrUnavailable and no call", err, f.calls.Load())
	}
	gone, cancelGone := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancelGone)
	if _, err := s.Get(gone, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get abandoned by its caller = %v, want context.Canceled", err)
	}
	f.setHang(false)
	if v, err := s.Get(context.Background(), "k"); err != nil || v != "v" {
		t.Fatalf("Get after an abandoned call = %q, %v; want a new call, not a backoff", v, err)
	}
}

// While one caller refreshes, callers holding a value do not wait for it.
func TestRefreshUnderWayServesStaleToOthers(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/p/sign": "v1"}}
	fs := newFailingStore(t, f, 0, nil)
	ctx := context.Background()
	if _, err := fs.Get(ctx, "signing_secret"); err != nil {
		t.Fatal(err)
	}
	fs.clock.t = fs.clock.t.Add(DefaultMaxAge)
	f.setHang(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, _ = fs.Get(c, "signing_secret")
	}()
	for f.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if v, err := fs.Get(ctx, "signing_secret"); err != nil || v != "v1" || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("Get during a refresh = %q, %v after %s; want the held value at once", v, err, time.Since(start))
	}
	f.setHang(false)
	wg.Wait()
}

func TestStaticStoreNeedsNoPreload(t *testing.T) {
	t.Parallel()
	s := NewStatic(map[string]string{"k": "v"})
	if err := s.Preload(context.Background()); err != nil {
		t.Fatalf("Preload = %v", err)
	}
	var nf *NotFoundError
	if _, err := s.Get(context.Background(), "other"); !errors.As(err, &nf) || nf.Key != "other" {
		t.Fatalf("Get(other) = %v; want a *NotFoundError naming the key", err)
	}
}
