package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

var costsCmd = &command{
	name:    "costs",
	summary: "a day's most expensive answers, from the journal table (cost, tokens, model, team)",
	usage: `Usage: slackrelay-dlq costs [--table NAME | --stack NAME] [--day YYYY-MM-DD] [--top N] [--team T] [--json]

Lists the answers completed on --day (UTC; default today) whose record in the worker's
journal table keeps what they cost (the shipped bot keeps it on every answer: model, team,
input / cached / output tokens, tool calls, model time, the cost estimated from
LLM_PRICES), the most expensive first; answers whose cost is unknown (their model has no
price) come after them, by tokens. A summary on stderr gives the day's count, tokens and
total cost.

The table is --table, else the stack output IdempotencyTableName (--stack), else
$SLACKRELAY_TABLE. The command scans the whole table, page after page (DynamoDB filters
after reading: a scan costs about one read capacity unit per 8 KB of the table, and the
records of every event of the last IDEMPOTENCY_TTL are in it). It needs dynamodb:Scan on
the table (and cloudformation:DescribeStacks with --stack), nothing else.

The list is the day's only when the scan read every page. A scan that fails or is
interrupted part way prints what it saw, says on stderr that it is partial and exits 3; one
that fails on its first page exits 1.

Examples:
  slackrelay-dlq costs --stack slackrelay
  slackrelay-dlq costs --stack slackrelay --day 2026-12-07 --top 20
  slackrelay-dlq costs --table slackrelay-idempotency --team T0123 --json | jq .cost_usd`,
	setup: func(fs *flag.FlagSet) runFunc {
		table := fs.String("table", "", "the journal table `NAME` (default: the stack output IdempotencyTableName, or $"+envTable+")")
		day := fs.String("day", "", "the UTC day, `YYYY-MM-DD` (default today)")
		top := fs.Int("top", 20, "show the N most expensive answers (0 = all)")
		team := fs.String("team", "", "only this team id")
		asJSON := fs.Bool("json", false, "print one JSON object per answer instead of a table (the summary goes to stderr)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("costs", pos); err != nil {
				return err
			}
			if *top < 0 {
				return usagef("costs: --top must not be negative")
			}
			from := inv.deps.Now().UTC().Truncate(24 * time.Hour)
			if *day != "" {
				d, err := time.Parse(time.DateOnly, *day)
				if err != nil {
					return usagef("costs: --day %q is not a date like 2026-12-07", *day)
				}
				from = d
			}
			name, db, err := inv.journal(ctx, *table)
			if err != nil {
				return err
			}
			return inv.costs(ctx, db, name, from, *team, *top, *asJSON)
		}
	},
}

// journal finds the journal table (--table, the stack's output, $SLACKRELAY_TABLE) and a
// client that scans it.
func (inv *invocation) journal(ctx context.Context, table string) (string, journal.Scanner, error) {
	if table == "" && inv.stack != "" {
		cfn := inv.deps.CFN
		if cfn == nil {
			if inv.deps.NewClients == nil {
				return "", nil, errors.New("no CloudFormation client configured")
			}
			_, c, err := inv.deps.NewClients(ctx, inv.region)
			if err != nil {
				return "", nil, err
			}
			cfn = c
		}
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &inv.stack})
		if err != nil {
			return "", nil, fmt.Errorf("read stack %s: %w (check --stack and --region)", inv.stack, err)
		}
		if len(out.Stacks) == 0 {
			return "", nil, fmt.Errorf("stack %s not found (check --stack and --region)", inv.stack)
		}
		for _, o := range out.Stacks[0].Outputs {
			if o.OutputKey != nil && *o.OutputKey == "IdempotencyTableName" && o.OutputValue != nil {
				table = *o.OutputValue
			}
		}
		if table == "" {
			return "", nil, fmt.Errorf("stack %s lacks the output IdempotencyTableName; pass --table", inv.stack)
		}
	}
	table = cmp.Or(table, inv.deps.Getenv(envTable))
	if table == "" {
		return "", nil, usagef("no journal table: pass --table or --stack (or set %s)", envTable)
	}
	db := inv.deps.DynamoDB
	if db == nil {
		if inv.deps.NewDynamoDB == nil {
			return "", nil, errors.New("no DynamoDB client configured")
		}
		var err error
		if db, err = inv.deps.NewDynamoDB(ctx, inv.region); err != nil {
			return "", nil, err
		}
	}
	return table, db, nil
}

// costJSON is costs --json's line.
type costJSON struct {
	Key              string   `json:"key"`
	CompletedAt      string   `json:"completed_at"`
	Team             string   `json:"team,omitempty"`
	Model            string   `json:"model,omitempty"`
	CostUSD          *float64 `json:"cost_usd"` // null when unknown
	InputTokens      int64    `json:"input_tokens"`
	CachedTokens     int64    `json:"cached_tokens"`
	CacheWriteTokens int64    `json:"cache_write_tokens"`
	OutputTokens     int64    `json:"output_tokens"`
	ModelCalls       int64    `json:"model_calls"`
	ToolCalls        int64    `json:"tool_calls"`
	ModelMs          int64    `json:"model_ms"`
}

// costs scans the day's answers and prints the top ones, most expensive first.
func (inv *invocation) costs(ctx context.Context, db journal.Scanner, table string, from time.Time, team string, top int, asJSON bool) error {
	var all []journal.Answered
	pages, scanErr := journal.ScanAnswered(ctx, db, table, from, from.Add(24*time.Hour), team, func(a journal.Answered) error {
		all = append(all, a)
		return ctx.Err() // an interrupt ends the scan here too
	})
	if scanErr != nil && pages == 0 {
		return fmt.Errorf("scan the journal table %s: %w", table, scanErr)
	}
	slices.SortStableFunc(all, func(a, b journal.Answered) int {
		ca, cb := a.Usage.CostUSD, b.Usage.CostUSD
		switch {
		case ca != nil && cb != nil && *ca != *cb:
			return cmp.Compare(*cb, *ca)
		case (ca == nil) != (cb == nil):
			if ca == nil {
				return 1
			}
			return -1
		}
		if ta, tb := a.Usage.InputTokens+a.Usage.OutputTokens, b.Usage.InputTokens+b.Usage.OutputTokens; ta != tb {
			return cmp.Compare(tb, ta)
		}
		return cmp.Or(a.Completed.Compare(b.Completed), cmp.Compare(a.Key, b.Key))
	})
	shown := all
	if top > 0 && len(shown) > top {
		shown = shown[:top]
	}
	if asJSON {
		for _, a := range shown {
			u := a.Usage
			line := costJSON{Key: a.Key, CompletedAt: a.Completed.UTC().Format(time.RFC3339), Team: u.Team, Model: u.Model, CostUSD: u.CostUSD,
				InputTokens: u.InputTokens, CachedTokens: u.CachedTokens, CacheWriteTokens: u.CacheWriteTokens, OutputTokens: u.OutputTokens,
				ModelCalls: u.ModelCalls, ToolCalls: u.ToolCalls, ModelMs: u.ModelMillis}
			if err := writeJSONLine(inv.stdout, line); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COST USD\tINPUT\tCACHED\tOUTPUT\tTOOLS\tMODEL TIME\tCOMPLETED\tTEAM\tMODEL\tKEY")
		for _, a := range shown {
			u := a.Usage
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", usd(u.CostUSD), u.InputTokens, u.CachedTokens, u.OutputTokens,
				u.ToolCalls, (time.Duration(u.ModelMillis) * time.Millisecond).Round(time.Millisecond), a.Completed.UTC().Format(time.TimeOnly),
				dash(u.Team), dash(u.Model), a.Key)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var total float64
	var priced, in, out int64
	for _, a := range all {
		if a.Usage.CostUSD != nil {
			total += *a.Usage.CostUSD
			priced++
		}
		in += a.Usage.InputTokens
		out += a.Usage.OutputTokens
	}
	who := ""
	if team != "" {
		who = " of team " + team
	}
	summary := fmt.Sprintf("%d answer(s)%s completed on %s (UTC) keep their cost, %d shown; %d with a known cost, %s USD in all; %d input and %d output tokens",
		len(all), who, from.Format(time.DateOnly), len(shown), priced, strconv.FormatFloat(total, 'f', 6, 64), in, out)
	if scanErr != nil {
		fmt.Fprintln(inv.stderr, "partial, so far: "+summary)
		return &PartialError{Msg: fmt.Sprintf("partial view: the scan of %s stopped after %d page(s), so the list above is not the whole day: %v\n"+
			"  run again (the scan reads the table from the start)", table, pages, scanErr)}
	}
	fmt.Fprintf(inv.stderr, "%s; scanned all %d page(s) of %s\n", summary, pages, table)
	return nil
}

// usd prints a cost, "unknown" when there is none.
func usd(c *float64) string {
	if c == nil {
		return "unknown"
	}
	return strconv.FormatFloat(*c, 'f', 6, 64)
}
