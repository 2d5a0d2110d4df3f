package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/worker/dlqtool"
)

// registerFilter adds the filter flags of list and replay.
func registerFilter(fs *flag.FlagSet, f *dlqtool.Filter) {
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
