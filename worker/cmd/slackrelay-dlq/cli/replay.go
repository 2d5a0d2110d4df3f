package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"golang.org/x/time/rate"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var replayCmd = &command{
	name:    "replay",
	summary: "send chosen DLQ messages back to the events queue, one by one (dry run unless --yes)",
	usage: `Usage: slackrelay-dlq replay [queue flags] (--id ID... | filters | --all) [--max N]
                             [--rate N] [--max-age D] [--allow-stale] [--keep-going] [--yes]

Without --yes it only prints what it would replay. With --yes, for each chosen message it
sends the same body to the events queue with the original message attributes minus the
failure attributes (FailureReason, FailureClass, FailedHandler, FailedAt) and with
ReplayCount one higher, and deletes the DLQ copy only after that send succeeded. The
chosen messages stay hidden from every other reader until each is replayed, however long
the replay takes at --rate; the others are made visible again right after the scan.

If a send fails, replay stops (or goes on with --keep-going); the failed message and every
message not attempted stay in the DLQ, visible again. The exit code is then 3.

With --all or a filter, replay acts on every message it can see: when the DLQ counts
messages it could not see (another reader holds them, they are delayed), it replays what it
saw, says how many it could not see, and exits 3. Run it again for the rest.

Events older than --max-age (by event_time, else received_at) are skipped with a warning
unless --allow-stale: a reply to a days-old mention usually confuses more than it helps.

Peeking to find the messages adds one to their receive count on real SQS (see list -h).

Examples:
  slackrelay-dlq replay --stack slackrelay --id 5c1f0c1e-...            # dry run
  slackrelay-dlq replay --stack slackrelay --id 5c1f0c1e-... --yes
  slackrelay-dlq replay --stack slackrelay --reason rate_limited --newer-than 1h --rate 2 --yes
  slackrelay-dlq replay --stack slackrelay --all --max-age 24h --yes`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		var o replayOptions
		registerFilter(fs, &o.filter)
		fs.Var(&o.ids, "id", "replay this message `ID` (repeatable, or comma separated)")
		fs.BoolVar(&o.all, "all", false, "replay every DLQ message (needed when neither --id nor a filter is given)")
		fs.IntVar(&o.max, "max", 0, "replay at most N messages (0 = no limit)")
		fs.Float64Var(&o.rate, "rate", 10, "at most N messages per second")
		fs.BoolVar(&o.yes, "yes", false, "really replay (default: dry run)")
		fs.BoolVar(&o.keepGoing, "keep-going", false, "after a failed send, go on with the next message instead of stopping")
		o.guard.register(fs, "replay", "")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			switch {
			case len(pos) > 0:
				return usagef("replay: unexpected argument %q (message ids go in --id)", pos[0])
			case len(o.ids) == 0 && !o.filter.Any() && !o.all:
				return usagef("replay needs --id, a filter (--event-type, --team, --reason, --kind, --class, --older-than, --newer-than) or --all")
			case o.rate <= 0:
				return usagef("replay: --rate must be more than 0")
			case o.max < 0:
				return usagef("replay: --max must not be negative")
			}
			if err := o.guard.check("replay"); err != nil {
				return err
			}
			qs, err := inv.queues(ctx, true, true)
			if err != nil {
				return err
			}
			var enough func(*deadletter.Hold) bool
			if len(o.ids) > 0 {
				enough = func(h *deadletter.Hold) bool {
					for _, id := range o.ids {
						if !h.Holds(id) {
							return false
						}
					}
					return true
				}
			}
			return inv.peek(ctx, qs.dlq, 0, enough, func(s scanned) error {
				return inv.replay(ctx, qs, s, &o)
			})
		}
	},
}

type replayOptions struct {
	filter              deadletter.Filter
	ids                 idList
	all, yes, keepGoing bool
	max                 int
	rate                float64
	guard               staleGuard
}

func (inv *invocation) replay(ctx context.Context, qs queues, s scanned, o *replayOptions) error {
	now := inv.deps.Now()
	want, found := map[string]bool{}, map[string]bool{}
	for _, id := range o.ids {
		want[id] = true
	}
	var chosen, stale, rest []*deadletter.Message
	for _, m := range s.hold.Messages() {
		switch {
		case len(want) > 0 && !want[m.ID], !o.filter.Match(m, now), o.max > 0 && len(chosen) >= o.max:
			rest = append(rest, m)
		case !s.hold.Holds(m.ID):
			fmt.Fprintf(inv.stderr, "warning: skipping %s: the scan could not keep it hidden (another reader may have it)\n", m.ID)
			rest = append(rest, m)
		case o.guard.stale(m, now):
			stale = append(stale, m)
		default:
			chosen = append(chosen, m)
		}
		if want[m.ID] {
			found[m.ID] = true
		}
	}
	missing := 0
	for _, id := range o.ids {
		if !found[id] {
			found[id] = true // warn once per id
			missing++
			fmt.Fprintf(inv.stderr, "warning: message %s not found in the DLQ\n", id)
		}
	}
	for _, m := range stale {
		o.guard.warn(inv.stderr, m, now, "replay")
	}
	// Only the chosen stay hidden while the replay runs.
	if err := s.hold.ReleaseMessages(ctx, append(rest, stale...)); err != nil {
		fmt.Fprintln(inv.stderr, "warning:", err)
	}
	// The view must be whole when acting on "every message that matches", and when an
	// asked-for id was not found.
	viewPartial := !s.res.Complete() && (len(want) == 0 || missing > 0)
	viewErr := func(did string) error {
		if !viewPartial {
			return nil
		}
		return inv.partial(did, s.res)
	}
	if !o.yes {
		for _, m := range chosen {
			fmt.Fprintf(inv.stdout, "would replay %s  %s %s team %s, event %s old, replay #%d\n", m.ID, dash(m.Kind()),
				dash(m.EventType()), dash(m.Team()), ageOf(m, now), m.ReplayCount()+1)
		}
		fmt.Fprintf(inv.stdout, "dry run: would replay %d message(s) to %s, skip %d stale; pass --yes to replay\n",
			len(chosen), deadletter.QueueName(qs.events), len(stale))
		if err := viewErr(fmt.Sprintf("dry run: would replay %d message(s)", len(chosen))); err != nil {
			return err
		}
		if missing > 0 && len(chosen) == 0 {
			return fmt.Errorf("none of the given ids is in the DLQ")
		}
		return nil
	}
	if len(chosen) == 0 {
		fmt.Fprintf(inv.stdout, "replayed 0, skipped stale %d, failed 0\n", len(stale))
		if err := viewErr("replayed 0 message(s)"); err != nil {
			return err
		}
		if missing > 0 {
			return fmt.Errorf("none of the given ids is in the DLQ")
		}
		return nil
	}

	prog := &progress{w: inv.stdout, tty: inv.deps.IsTerminal, total: len(chosen)}
	lim := rate.NewLimiter(rate.Limit(o.rate), 1)
	replayed, failed, attempted := 0, 0, 0
	var failures []string
	for _, m := range chosen {
		if err := lim.Wait(ctx); err != nil {
			break
		}
		attempted++
		if err := s.hold.Replay(ctx, qs.events, m); err != nil {
			failed++
			failures = append(failures, fmt.Sprintf("%s: %v", m.ID, err))
			prog.fail(m.ID, err)
			if !o.keepGoing {
				break
			}
			continue
		}
		replayed++
		prog.ok(m.ID, replayed+failed)
	}
	prog.finish()
	notAttempted := len(chosen) - attempted
	summary := fmt.Sprintf("replayed %d, skipped stale %d, failed %d", replayed, len(stale), failed)
	if notAttempted > 0 {
		summary += fmt.Sprintf(", not attempted %d", notAttempted)
	}
	fmt.Fprintln(inv.stdout, summary)
	if failed > 0 || notAttempted > 0 {
		msg := summary + "; the messages not replayed are still in the DLQ"
		if ctx.Err() != nil {
			msg = "interrupted: " + msg
		}
		if len(failures) > 0 {
			msg += "\n  " + strings.Join(failures, "\n  ")
		}
		if viewPartial {
			msg += "\n  " + strings.Join(inv.incomplete(s.res), "\n  ")
		}
		return &PartialError{Msg: msg}
	}
	return viewErr(summary)
}

// progress prints a single-line bar on a terminal, one line per message otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	done  int
	drawn bool
}

const barWidth = 30

func (p *progress) bar() {
	n := barWidth * p.done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(" ", barWidth-n), p.done, p.total)
	p.drawn = true
}

func (p *progress) ok(id string, n int) {
	p.done = n
	if p.tty {
		p.bar()
		return
	}
	fmt.Fprintf(p.w, "replayed %s (%d/%d)\n", id, n, p.total)
}

func (p *progress) fail(id string, err error) {
	p.done++
	if p.tty {
		fmt.Fprintf(p.w, "\rfailed %s: %v\n", id, err)
		p.bar()
		return
	}
	fmt.Fprintf(p.w, "failed %s: %v (%d/%d)\n", id, err, p.done, p.total)
}

func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
