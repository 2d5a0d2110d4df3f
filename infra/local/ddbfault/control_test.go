package ddbfault_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
)

// Another process arms rules, reads what the proxy saw and resets it over HTTP.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &ddbfault.Client{BaseURL: f.proxy.URL() + "/", HTTP: &http.Client{Timeout: 5 * time.Second}}

	failID, err := c.Arm(ctx, ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}, PKPrefix: f.prefix}, Nth: 2, Action: ddbfault.FailPermanent()})
	if err != nil {
		t.Fatal(err)
	}
	delayID, err := c.Arm(ctx, ddbfault.Rule{Match: ddbfault.Match{Ops: []string{ddbfault.Reads}, PKPrefix: f.prefix}, Times: ddbfault.Forever,
		Action: ddbfault.Delay(150 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f.get(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("the read took %v, want the armed 150ms delay", took)
	}
	if err := f.count(ctx, "n"); err != nil {
		t.Fatalf("1st UpdateItem: %v", err)
	}
	if code := apiCode(f.count(ctx, "n")); code != ddbfault.ErrValidation {
		t.Fatalf("2nd UpdateItem: code %q, want the armed %s", code, ddbfault.ErrValidation)
	}

	rules, err := c.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ddbfault.RuleStatus{
		{ID: failID, Matched: 2, Operations: 2, Fired: 1, Armed: true},
		{ID: delayID, Matched: 1, Operations: 1, Fired: 1, Armed: true},
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.proxy.Snapshot(), snap); diff != "" {
		t.Errorf("snapshot over HTTP differs from the proxy's (-proxy +control):\n%s", diff)
	}
	if len(snap.Calls) != 3 || snap.Calls[0].Rule != delayID || snap.Calls[2].Rule != failID || snap.Calls[2].Fault != ddbfault.KindFail {
		t.Errorf("calls = %+v, want the delayed read, a plain update, the failed update", snap.Calls)
	}

	if err := c.Disarm(ctx, failID); err != nil {
		t.Fatal(err)
	}
	if err := c.Disarm(ctx, failID); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("disarming twice: %v, want not_found", err)
	}
	if err := c.SetDown(ctx, true); err != nil || !f.proxy.Down() {
		t.Fatalf("SetDown over HTTP: %v (down %v)", err, f.proxy.Down())
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if snap, err := c.Snapshot(ctx); err != nil || len(snap.Calls) != 0 || snap.Total != (ddbfault.Counts{}) {
		t.Errorf("after Reset: %+v, %v; want nothing recorded", snap, err)
	}
	if rules, err := c.Rules(ctx); err != nil || len(rules) != 0 || f.proxy.Down() {
		t.Errorf("after Reset: rules %+v, %v, down %v; want none, up", rules, err, f.proxy.Down())
	}
}

func TestControlRefusesBadRules(t *testing.T) {
	t.Parallel()
	p, err := ddbfault.Start(ddbfault.Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	c := &ddbfault.Client{BaseURL: p.URL()}
	hook := ddbfault.Hook(func(context.Context, ddbfault.Call) ddbfault.Action { return ddbfault.Pass() }, nil)
	for _, r := range []ddbfault.Rule{
		{Action: hook},
		{Match: ddbfault.Match{PK: func(string) bool { return true }}, Action: ddbfault.Reset()},
	} {
		if _, err := c.Arm(ctx, r); err == nil || !strings.Contains(err.Error(), "cannot be sent to another process") {
			t.Errorf("Arm of a rule holding Go funcs: %v, want refused", err)
		}
	}
	for body, want := range map[string]string{
		`{"action":{"kind":"fail","status":200,"error_type":"X"}}`: "status_must_be_4xx_or_5xx",
		`{"action":{"kind":"fail","status":500}}`:                  "error_type_required",
		`{"action":{"kind":"explode"}}`:                            "unknown_action",
		`{"action":{"kind":"hook"}}`:                               "hooks_need_go",
		`{"nth":-1,"action":{"kind":"reset"}}`:                     "negative_value",
		`{"action":`:                                               "invalid_json",
	} {
		resp, err := http.Post(p.URL()+"/_control/rules", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(got), `"error":"`+want+`"`) {
			t.Errorf("POST %s: %d %s, want 400 %s", body, resp.StatusCode, got, want)
		}
	}
	if rules := p.Rules(); len(rules) != 0 {
		t.Errorf("rules armed from bad requests: %+v", rules)
	}
}
