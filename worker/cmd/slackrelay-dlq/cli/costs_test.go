package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// costDay is the day the seeded answers completed on.
var costDay = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

// seededAnswer is a record the worker would leave: completed at, with this usage.
type seededAnswer struct {
	key   string
	at    time.Time
	usage *core.Usage
}

func dollars(v float64) *float64 { return &v }

// seedJournal writes the records through the worker's own journal (claim, SetUsage,
// Complete) into a fresh table on the local DynamoDB server, and returns its name.
func seedJournal(t *testing.T, answers []seededAnswer) (string, *dynamodb.Client) {
	t.Helper()
	db := awstest.DynamoDB(t)
	table := awstest.NewTable(t)
	var now time.Time
	s := &journal.Store{DB: db, Table: table, TTL: 30 * 24 * time.Hour, Now: func() time.Time { return now }}
	ctx := context.Background()
	for _, a := range answers {
		now = a.at
		c, err := s.Claim(ctx, a.key, journal.NewOwner("m-"+a.key), now.Add(time.Minute))
		if err != nil || c.Outcome != journal.Claimed {
			t.Fatalf("claim %s: %v, %v", a.key, c.Outcome, err)
		}
		if a.usage != nil {
			c.Lease.SetUsage(*a.usage)
		}
		c.Lease.CountDaily("T1:tokens", 1) // a counter item, which costs must skip
		if err := c.Lease.Complete(ctx); err != nil {
			t.Fatalf("complete %s: %v", a.key, err)
		}
	}
	return table, db
}

// theDay is a journal of seven answers on costDay (one unpriced), and others around it.
func theDay(t *testing.T) (string, *dynamodb.Client) {
	at := func(h int) time.Time { return costDay.Add(time.Duration(h) * time.Hour) }
	u := func(team string, cost *float64, in, out int64) *core.Usage {
		return &core.Usage{Model: "anthropic.claude-x", Team: team, InputTokens: in, OutputTokens: out, CachedTokens: in / 2,
			ModelCalls: 2, ToolCalls: 1, ModelMillis: 1500, CostUSD: cost}
	}
	return seedJournal(t, []seededAnswer{
		{"msg:T1:C1:a", at(1), u("T1", dollars(0.0123), 3000, 500)},
		{"msg:T1:C1:b", at(2), u("T1", dollars(0.2), 40000, 3000)},
		{"msg:T2:C2:c", at(3), u("T2", dollars(0.05), 9000, 900)},
		{"msg:T1:C1:d", at(4), u("T1", nil, 70000, 100)}, // no price: unknown, listed after the priced ones
		{"msg:T2:C2:e", at(5), u("T2", dollars(0.0009), 300, 50)},
		{"msg:T1:C1:f", at(23), u("T1", dollars(0.07), 10000, 1000)},
		{"msg:T1:C1:g", at(6), nil},                               // answered without usage (a notice, another route)
		{"msg:T1:C1:h", at(-1), u("T1", dollars(5), 1, 1)},        // the day before
		{"msg:T1:C1:i", at(24), u("T1", dollars(5), 1, 1)},        // the day after
		{"msg:T1:C1:j", at(12), u("T1", dollars(0.0009), 10, 10)}, // as cheap as e, fewer tokens
	})
}

func runCosts(t *testing.T, deps Deps, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if deps.Getenv == nil {
		deps.Getenv = func(string) string { return "" }
	}
	err := RunWith(ctx, deps, append([]string{"costs"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// keysOf is the KEY column of costs' table, in order.
func keysOf(t *testing.T, table string) []string {
	t.Helper()
	var keys []string
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "COST" {
			continue
		}
		keys = append(keys, f[len(f)-1])
	}
	return keys
}

func TestCostsListsTheDaysMostExpensiveAnswers(t *testing.T) {
	t.Parallel()
	table, db := theDay(t)
	out, errOut, err := runCosts(t, Deps{DynamoDB: db}, "--table", table, "--day", "2026-12-07", "--top", "4")
	if err != nil {
		t.Fatalf("costs: %v\n%s", err, errOut)
	}
	if got, want := keysOf(t, out), []string{"msg:T1:C1:b", "msg:T1:C1:f", "msg:T2:C2:c", "msg:T1:C1:a"}; !equal(got, want) {
		t.Errorf("top 4 = %v, want %v\n%s", got, want, out)
	}
	mustContain(t, out, "COST USD", "0.200000", "40000", "anthropic.claude-x", "02:00:00", "1.5s")
	mustContain(t, errOut, "7 answer(s) completed on 2026-12-07 (UTC) keep their cost, 4 shown", "6 with a known cost, 0.334100 USD in all",
		"132310 input and 5560 output tokens", "scanned all")

	// All of them: the unknown cost after the priced ones, not as 0.
	out, _, err = runCosts(t, Deps{DynamoDB: db}, "--table", table, "--day", "2026-12-07", "--top", "0")
	// e and j cost the same: the one with more tokens first.
	want := []string{"msg:T1:C1:b", "msg:T1:C1:f", "msg:T2:C2:c", "msg:T1:C1:a", "msg:T2:C2:e", "msg:T1:C1:j", "msg:T1:C1:d"}
	if got := keysOf(t, out); err != nil || !equal(got, want) {
		t.Errorf("all = %v, %v; want %v", got, err, want)
	}
	if last := strings.Split(strings.TrimSpace(out), "\n"); !strings.HasPrefix(strings.TrimSpace(last[len(last)-1]), "unknown") {
		t.Errorf("the unpriced answer's cost should read unknown:\n%s", out)
	}

	// One team, as JSON.
	out, errOut, err = runCosts(t, Deps{DynamoDB: db}, "--table", table, "--day", "2026-12-07", "--team", "T2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var lines []costJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c costJSON
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, c)
	}
	if len(lines) != 2 || lines[0].Key != "msg:T2:C2:c" || lines[0].CostUSD == nil || *lines[0].CostUSD != 0.05 || lines[0].Team != "T2" ||
		lines[0].InputTokens != 9000 || lines[0].CachedTokens != 4500 || lines[0].ToolCalls != 1 || lines[0].ModelMs != 1500 ||
		lines[0].CompletedAt != "2026-12-07T03:00:00Z" || lines[1].Key != "msg:T2:C2:e" {
		t.Errorf("T2 as JSON = %+v", lines)
	}
	mustContain(t, errOut, "2 answer(s) of team T2")

	// A day with nothing.
	out, errOut, err = runCosts(t, Deps{DynamoDB: db}, "--table", table, "--day", "2026-11-01")
	if err != nil || keysOf(t, out) != nil || !strings.Contains(errOut, "0 answer(s)") {
		t.Errorf("an empty day: %v, %q, %q", err, out, errOut)
	}
}

// The table comes from --stack's output IdempotencyTableName or $SLACKRELAY_TABLE, and the
// day defaults to today (UTC).
func TestCostsFindsTheTable(t *testing.T) {
	t.Parallel()
	table, db := theDay(t)
	now := func() time.Time { return costDay.Add(15 * time.Hour) }
	out, _, err := runCosts(t, Deps{DynamoDB: db, CFN: fakeCFN{"relay": {"IdempotencyTableName": table}}, Now: now}, "--stack", "relay", "--top", "1")
	if got := keysOf(t, out); err != nil || !equal(got, []string{"msg:T1:C1:b"}) {
		t.Errorf("--stack: %v, %v", got, err)
	}
	env := func(k string) string {
		if k == envTable {
			return table
		}
		return ""
	}
	out, _, err = runCosts(t, Deps{DynamoDB: db, Getenv: env, Now: now}, "--top", "1")
	if got := keysOf(t, out); err != nil || !equal(got, []string{"msg:T1:C1:b"}) {
		t.Errorf("$SLACKRELAY_TABLE: %v, %v", got, err)
	}
	_, _, err = runCosts(t, Deps{DynamoDB: db, CFN: fakeCFN{"relay": {"EventsQueueUrl": "q"}}}, "--stack", "relay")
	if err == nil || !strings.Contains(err.Error(), "IdempotencyTableName") || ExitCode(err) != ExitFailure {
		t.Errorf("a stack without the output: %v", err)
	}
	for _, args := range [][]string{{}, {"--table", "t", "--day", "07/12/2026"}, {"--table", "t", "--top", "-1"}, {"--table", "t", "extra"}} {
		if _, _, err := runCosts(t, Deps{DynamoDB: db}, args...); ExitCode(err) != ExitUsage {
			t.Errorf("costs %q = %v, want a usage error", args, err)
		}
	}
}

// failingPages makes every scan page hold at most 2 items and fails page failAt.
type failingPages struct {
	journal.Scanner
	failAt int
	mu     sync.Mutex
	pages  int
}

func (f *failingPages) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.mu.Lock()
	f.pages++
	n := f.pages
	f.mu.Unlock()
	if n == f.failAt {
		return nil, errors.New("operation error DynamoDB: Scan, ProvisionedThroughputExceededException")
	}
	c := *in
	c.Limit = aws.Int32(2)
	return f.Scanner.Scan(ctx, &c, o...)
}

// A scan cut short is never shown as the day's list: it says it is partial and exits 3; one
// that fails at once exits 1; one that reads every page, however many, is complete.
func TestCostsNeverPassesAPartialScanAsComplete(t *testing.T) {
	t.Parallel()
	table, db := theDay(t)
	out, errOut, err := runCosts(t, Deps{DynamoDB: &failingPages{Scanner: db}}, "--table", table, "--day", "2026-12-07", "--top", "0")
	if err != nil || len(keysOf(t, out)) != 7 || !strings.Contains(errOut, "scanned all") {
		t.Errorf("a scan of many pages: %v, %d rows, %q", err, len(keysOf(t, out)), errOut)
	}
	if !strings.Contains(errOut, fmt.Sprintf("page(s) of %s", table)) {
		t.Errorf("summary %q does not name the table", errOut)
	}

	_, errOut, err = runCosts(t, Deps{DynamoDB: &failingPages{Scanner: db, failAt: 3}}, "--table", table, "--day", "2026-12-07")
	var pe *PartialError
	if !errors.As(err, &pe) || ExitCode(err) != ExitPartial || !strings.Contains(err.Error(), "after 2 page(s)") ||
		!strings.Contains(err.Error(), "not the whole day") || !strings.Contains(err.Error(), "ProvisionedThroughputExceeded") || strings.Contains(errOut, "scanned all") {
		t.Errorf("a scan cut at page 3: %v (exit %d), stderr %q; want a partial view, exit 3", err, ExitCode(err), errOut)
	}

	_, _, err = runCosts(t, Deps{DynamoDB: &failingPages{Scanner: db, failAt: 1}}, "--table", table, "--day", "2026-12-07")
	if err == nil || ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), table) {
		t.Errorf("a scan failing at once: %v (exit %d), want exit 1 naming the table", err, ExitCode(err))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var o, e bytes.Buffer
	err = RunWith(ctx, Deps{DynamoDB: db, Getenv: func(string) string { return "" }}, []string{"costs", "--table", table, "--day", "2026-12-07"}, &o, &e)
	if err == nil || ExitCode(err) == ExitOK {
		t.Errorf("an interrupted scan = %v, want a failure", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
