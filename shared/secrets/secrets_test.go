package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeSSM struct {
	mu     sync.Mutex
	values map[string]string
	calls  atomic.Int32
	err    error
	delay  time.Duration
	hang   bool // answer nothing until the call's context ends (or hang is cleared)
	last   *ssm.GetParametersInput
}

func (f *fakeSSM) GetParameters(ctx context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	for f.hanging() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = in
	if f.err != nil {
		return nil, f.err
	}
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		if v, ok := f.values[n]; ok {
			out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(v)})
		} else {
			out.InvalidParameters = append(out.InvalidParameters, n)
		}
	}
	return out, nil
}

func (f *fakeSSM) set(name, v string) { f.mu.Lock(); f.values[name] = v; f.mu.Unlock() }
func (f *fakeSSM) setErr(err error)   { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *fakeSSM) setHang(h bool)     { f.mu.Lock(); f.hang = h; f.mu.Unlock() }
func (f *fakeSSM) hanging() bool      { f.mu.Lock(); defer f.mu.Unlock(); return f.hang }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestGetCachesAndReadsAllInOneCall(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/a/sign": "s1", "/a/bot": "b1"}}
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := NewSSM(f, map[string]string{"signing_secret": "/a/sign", "bot_token": "/a/bot"}, Options{Now: c.now})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if v, err := s.Get(ctx, "signing_secret"); err != nil || v != "s1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if v, err := s.Get(ctx, "bot_token"); err != nil || v != "b1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("GetParameters called %d times, want 1", n)
	}
	if !aws.ToBool(f.last.WithDecryption) || len(f.last.Names) != 2 {
		t.Fatalf("input = %+v, want both names with decryption", f.last)
	}
	f.set("/a/sign", "s2")
	c.t = c.t.Add(4 * time.Minute)
	if v, _ := s.Get(ctx, "signing_secret"); v != "s1" {
		t.Fatalf("value changed before MaxAge: %q", v)
	}
	c.t = c.t.Add(2 * time.Minute)
	if v, _ := s.Get(ctx, "signing_secret"); v != "s2" {
		t.Fatalf("value not reloaded after MaxAge: %q", v)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("GetParameters called %d times, want 2", n)
	}
}

func TestForceRefreshAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/s": "old"}}
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := NewSSM(f, map[string]string{"signing_secret": "/s"}, Options{Now: c.now})
	ctx := context.Background()
	if _, err := s.Get(ctx, "signing_secret"); err != nil {
		t.Fatal(err)
	}
	f.set("/s", "rotated")
	if ok, err := s.ForceRefresh(ctx); !ok || err != nil {
		t.Fatalf("first ForceRefresh = %v, %v", ok, err)
	}
	if v, _ := s.Get(ctx, "signing_secret"); v != "rotated" {
		t.Fatalf("after refresh got %q", v)
	}
	c.t = c.t.Add(30 * time.Second)
	if ok, _ := s.ForceRefresh(ctx); ok {
		t.Fatal("second ForceRefresh within a minute was not skipped")
	}
	c.t = c.t.Add(31 * time.Second)
	if ok, _ := s.ForceRefresh(ctx); !ok {
		t.Fatal("ForceRefresh after a minute was skipped")
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("GetParameters called %d times, want 3", n)
	}
}

func TestConcurrentGetsShareOneCall(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/s": "v"}, delay: 50 * time.Millisecond}
	s := NewSSM(f, map[string]string{"k": "/s"}, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := s.Get(context.Background(), "k"); err != nil || v != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("GetParameters called %d times, want 1", n)
	}
}

func TestErrorsNameParametersNeverValues(t *testing.T) {
	t.Parallel()
	f := &fakeSSM{values: map[string]string{"/present": "hunter2-secret"}}
	s := NewSSM(f, map[string]string{"a": "/present", "b": "/absent"}, Options{})
	_, err := s.Get(context.Background(), "a")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/absent") {
		t.Fatalf("err = %v, want ErrNotFound naming /absent", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("error contains a secret value")
	}
	f.err = errors.New("AccessDenied")
	s2 := NewSSM(f, map[string]string{"a": "/present"}, Options{})
	if _, err := s2.Get(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewSSM(&fakeSSM{values: map[string]string{"/p": "x"}}, map[string]string{"a": "/p"}, Options{}).Get(context.Background(), "nokey"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key err = %v", err)
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	s := NewStatic(map[string]string{"signing_secret": "x", "empty": ""})
	if v, err := s.Get(context.Background(), "signing_secret"); v != "x" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	for _, k := range []string{"empty", "missing"} {
		if _, err := s.Get(context.Background(), k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%s) err = %v", k, err)
		}
	}
	if ok, err := s.ForceRefresh(context.Background()); ok || err != nil {
		t.Fatalf("ForceRefresh on static = %v, %v", ok, err)
	}
}

// TestRealSSMClient drives the aws-sdk-go-v2 SSM client against a local server speaking
// the AWS JSON 1.1 protocol, to check the request the store sends.
func TestRealSSMClient(t *testing.T) {
	t.Parallel()
	var got struct {
		Names          []string
		WithDecryption bool
	}
	var target string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target = r.Header.Get("X-Amz-Target")
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &got)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"Parameters":[{"Name":"/p/sign","Type":"SecureString","Value":"sekret","Version":3}],"InvalidParameters":[]}`))
	}))
	defer srv.Close()
	client := ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
	})
	s := NewSSM(client, map[string]string{"signing_secret": "/p/sign"}, Options{})
	v, err := s.Get(context.Background(), "signing_secret")
	if err != nil || v != "sekret" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if target != "AmazonSSM.GetParameters" || !got.WithDecryption || len(got.Names) != 1 || got.Names[0] != "/p/sign" {
		t.Fatalf("request: target %q body %+v", target, got)
	}
}
