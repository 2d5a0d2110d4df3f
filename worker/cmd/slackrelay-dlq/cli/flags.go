package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// registerFilter adds the filter flags of list and replay.
func registerFilter(fs *flag.FlagSet, f *deadletter.Filter) {
	fs.StringVar(&f.EventType, "event-type", "", "only this event type (app_mention, /ask, block_actions, ...)")
	fs.StringVar(&f.Team, "team", "", "only this team id")
	fs.StringVar(&f.Reason, "reason", "", "only messages whose failure reason contains this text (case-insensitive)")
	fs.StringVar(&f.Kind, "kind", "", "only this kind: event, slash_command, interaction")
	fs.StringVar(&f.Class, "class", "", "only this failure class: permanent, exhausted")
	fs.Var((*durationFlag)(&f.OlderThan), "older-than", "only events older than this `duration` (e.g. 30m, 2h, 3d)")
	fs.Var((*durationFlag)(&f.NewerThan), "newer-than", "only events newer than this `duration`")
}

// durationFlag is a time.Duration flag that also accepts days ("3d"); 0 means no limit.
type durationFlag time.Duration

func (d *durationFlag) String() string {
	if d == nil || *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q (use 90s, 30m, 2h or 3d)", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q (use 90s, 30m, 2h or 3d)", s)
	}
	return v, nil
}

// idList is a repeatable flag that also splits on commas.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(s string) error {
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*l = append(*l, id)
		}
	}
	return nil
}

// staleGuard is the check every command that puts messages on the events queue one by one
// (replay, import --to events) makes: events older than --max-age are skipped with a
// warning unless --allow-stale. A reply to a days-old mention usually confuses more than it
// helps, and response_url works for 30 minutes only.
type staleGuard struct {
	maxAge     durationFlag
	allowStale bool
}

// register adds --max-age (default 1h) and --allow-stale; verb is what the command does
// with a message ("replay", "import"), when is a qualifier of the flags' help ("" or
// "with --to events: ").
func (g *staleGuard) register(fs *flag.FlagSet, verb, when string) {
	g.maxAge = durationFlag(time.Hour)
	fs.Var(&g.maxAge, "max-age", when+"skip events older than this `duration` (stale guard)")
	fs.BoolVar(&g.allowStale, "allow-stale", false, when+verb+" events older than --max-age too")
}

// check is the flags' usage check.
func (g *staleGuard) check(cmd string) error {
	if g.maxAge <= 0 && !g.allowStale {
		return usagef("%s: --max-age must be more than 0 (or pass --allow-stale)", cmd)
	}
	return nil
}

// stale reports whether m is to be skipped: its event time (event_time, else received_at,
// else when it was sent to the DLQ) is known and older than --max-age.
func (g *staleGuard) stale(m *deadletter.Message, now time.Time) bool {
	return !g.allowStale && !m.EventTime().IsZero() && now.Sub(m.EventTime()) > time.Duration(g.maxAge)
}

// warn writes the warning line of a skipped message.
func (g *staleGuard) warn(w io.Writer, m *deadletter.Message, now time.Time, verb string) {
	fmt.Fprintf(w, "warning: skipping stale %s %s %s: event is %s old (--max-age %s; pass --allow-stale to %s it)\n",
		m.ID, dash(m.Kind()), dash(m.EventType()), ageOf(m, now), time.Duration(g.maxAge), verb)
}
