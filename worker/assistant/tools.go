package assistant

// The arithmetic of `calculate` is a small parser written here rather than a library's
// expression language (expr, govaluate): the tool needs five operators, parentheses and
// decimals, with exact limits on length and nesting and errors a model can act on, and no
// variables, functions or other power a model's input should not have; a few dozen lines do
// that without adding a dependency to the worker module.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // IANA time zones for current_time, also where the system has none (Lambda's provided.al2023)
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// The tools' names, as the model calls them.
const (
	ToolCalculate      = "calculate"
	ToolCurrentTime    = "current_time"
	ToolEarlierAnswers = "earlier_answers"
)

// DefaultTools are the tools the shipped bot offers its model: calculate, current_time and
// earlier_answers. Each only reads, so none is marked agent.SideEffects; each is bounded in
// its input, its output and its time.
func DefaultTools() []agent.Tool {
	return []agent.Tool{calculateTool(), currentTimeTool(time.Now), earlierAnswersTool()}
}

// Limits of calculate's input.
const (
	maxExpressionChars = 256
	maxExpressionDepth = 32
)

type calculateIn struct {
	Expression string `json:"expression" jsonschema:"maxLength=256,description=The arithmetic expression to evaluate: numbers (decimals with a dot; no thousands separators)\\, + - * / % (remainder) ^ (power)\\, unary minus and parentheses. Example: (2340 * 17.5 / 100) + 12.99"`
}

func calculateTool() agent.Tool {
	return agent.NewTool(ToolCalculate,
		"Evaluates an arithmetic expression exactly as written and returns its value. Use it for any arithmetic whose result matters "+
			"(sums, percentages, unit conversions, money) instead of working it out yourself; write percentages as a division by 100.",
		runCalculate, agent.Timeout(time.Second))
}

// runCalculate is calculate's handler: the expression's value, or what is wrong with it.
func runCalculate(_ context.Context, in calculateIn, _ string) (string, error) {
	v, err := calculate(in.Expression)
	if err != nil {
		return "", err
	}
	return formatNumber(v), nil
}

// calculate evaluates an arithmetic expression: numbers, + - * / % ^, unary minus and plus,
// parentheses; ^ binds tighter than unary minus (-2^2 is -4) and groups to the right
// (2^3^2 is 2^9).
func calculate(expr string) (float64, error) {
	if strings.TrimSpace(expr) == "" {
		return 0, errors.New("the expression is empty")
	}
	if n := utf8.RuneCountInString(expr); n > maxExpressionChars {
		return 0, fmt.Errorf("the expression is %d characters long; at most %d", n, maxExpressionChars)
	}
	p := &parser{in: expr}
	v, err := p.sum(0)
	if err != nil {
		return 0, err
	}
	p.space()
	if p.pos < len(p.in) {
		return 0, p.unexpected()
	}
	if math.IsInf(v, 0) {
		return 0, errors.New("the result is too large to represent")
	}
	if math.IsNaN(v) {
		return 0, errors.New("the result is not a real number")
	}
	return v, nil
}

// parser reads an expression by recursive descent; depth counts nested parentheses and
// unary signs, so no input can recurse without bound.
type parser struct {
	in  string
	pos int
}

func (p *parser) space() {
	for p.pos < len(p.in) && (p.in[p.pos] == ' ' || p.in[p.pos] == '\t' || p.in[p.pos] == '\n') {
		p.pos++
	}
}

// peek is the next character after spaces (0 at the end).
func (p *parser) peek() byte {
	p.space()
	if p.pos < len(p.in) {
		return p.in[p.pos]
	}
	return 0
}

func (p *parser) unexpected() error {
	if p.pos >= len(p.in) {
		return errors.New("the expression ends too early: an operand is missing")
	}
	r, _ := utf8.DecodeRuneInString(p.in[p.pos:])
	switch {
	case r == ',':
		return fmt.Errorf("unexpected ',' at position %d: write numbers without thousands separators and decimals with a dot", p.pos+1)
	case r == 'x' || r == '×' || r == '÷':
		return fmt.Errorf("unexpected %q at position %d: use * to multiply and / to divide", r, p.pos+1)
	}
	return fmt.Errorf("unexpected %q at position %d: only numbers, + - * / %% ^ and parentheses are allowed", r, p.pos+1)
}

// sum := product (('+' | '-') product)*
func (p *parser) sum(depth int) (float64, error) {
	v, err := p.product(depth)
	if err != nil {
		return 0, err
	}
	for {
		op := p.peek()
		if op != '+' && op != '-' {
			return v, nil
		}
		p.pos++
		r, err := p.product(depth)
		if err != nil {
			return 0, err
		}
		if op == '+' {
			v += r
		} else {
			v -= r
		}
	}
}

// product := unary (('*' | '/' | '%') unary)*
func (p *parser) product(depth int) (float64, error) {
	v, err := p.unary(depth)
	if err != nil {
		return 0, err
	}
	for {
		op := p.peek()
		if op != '*' && op != '/' && op != '%' {
			return v, nil
		}
		at := p.pos + 1
		p.pos++
		r, err := p.unary(depth)
		if err != nil {
			return 0, err
		}
		switch op {
		case '*':
			v *= r
		case '/':
			if r == 0 {
				return 0, fmt.Errorf("division by zero at position %d", at)
			}
			v /= r
		case '%':
			if r == 0 {
				return 0, fmt.Errorf("remainder of a division by zero at position %d", at)
			}
			v = math.Mod(v, r)
		}
	}
}

// unary := ('-' | '+') unary | power
func (p *parser) unary(depth int) (float64, error) {
	if depth > maxExpressionDepth {
		return 0, fmt.Errorf("the expression nests deeper than %d levels", maxExpressionDepth)
	}
	switch p.peek() {
	case '-':
		p.pos++
		v, err := p.unary(depth + 1)
		return -v, err
	case '+':
		p.pos++
		return p.unary(depth + 1)
	}
	return p.power(depth)
}

// power := operand ('^' unary)?
func (p *parser) power(depth int) (float64, error) {
	base, err := p.operand(depth)
	if err != nil {
		return 0, err
	}
	if p.peek() != '^' {
		return base, nil
	}
	p.pos++
	exp, err := p.unary(depth + 1)
	if err != nil {
		return 0, err
	}
	if base == 0 && exp < 0 {
		return 0, errors.New("zero to a negative power is a division by zero")
	}
	return math.Pow(base, exp), nil
}

// operand := number | '(' sum ')'
func (p *parser) operand(depth int) (float64, error) {
	c := p.peek()
	if c == '(' {
		open := p.pos + 1
		p.pos++
		v, err := p.sum(depth + 1)
		if err != nil {
			return 0, err
		}
		if p.peek() != ')' {
			if p.pos >= len(p.in) {
				return 0, fmt.Errorf("the parenthesis at position %d is not closed", open)
			}
			return 0, p.unexpected()
		}
		p.pos++
		return v, nil
	}
	start := p.pos
	for p.pos < len(p.in) && (p.in[p.pos] >= '0' && p.in[p.pos] <= '9' || p.in[p.pos] == '.') {
		p.pos++
	}
	// An exponent (1.5e3) belongs to the number.
	if p.pos > start && p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		q := p.pos + 1
		if q < len(p.in) && (p.in[q] == '+' || p.in[q] == '-') {
			q++
		}
		if q < len(p.in) && p.in[q] >= '0' && p.in[q] <= '9' {
			for q < len(p.in) && p.in[q] >= '0' && p.in[q] <= '9' {
				q++
			}
			p.pos = q
		}
	}
	if p.pos == start {
		return 0, p.unexpected()
	}
	v, err := strconv.ParseFloat(p.in[start:p.pos], 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("the number %q is too large", p.in[start:p.pos])
		}
		return 0, fmt.Errorf("%q at position %d is not a number", p.in[start:p.pos], start+1)
	}
	return v, nil
}

// formatNumber writes v with 15 significant digits at most (what a float64 holds exactly), so
// 0.1+0.2 reads 0.3; without an exponent from 10^-6 to below 10^15, where those digits are
// all written out, and with one beyond, so no digit shown is made up.
func formatNumber(v float64) string {
	if v == 0 {
		return "0" // not -0
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	if a := math.Abs(r); a >= 1e-6 && a < 1e15 {
		return strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strconv.FormatFloat(r, 'g', -1, 64)
}

type currentTimeIn struct {
	TimeZone string `json:"time_zone,omitempty" jsonschema:"maxLength=64,description=An IANA time zone such as Europe/Paris or America/New_York; empty for UTC"`
}

// currentTime is current_time's answer.
type currentTime struct {
	// Time is the time in RFC 3339 with the zone's offset.
	Time     string `json:"time"`
	Weekday  string `json:"weekday"`
	TimeZone string `json:"time_zone"`
	// Abbreviation is the zone's abbreviation then (CET, EDT), or its offset where it has none.
	Abbreviation string `json:"abbreviation"`
}

func currentTimeTool(now func() time.Time) agent.Tool {
	return agent.NewTool(ToolCurrentTime,
		"Returns the current date and time, with the weekday, in an IANA time zone (UTC when none is given). Use it whenever the answer "+
			"depends on today's date, the time, or a weekday; do not guess them.",
		currentTimeAt(now), agent.Timeout(time.Second))
}

// currentTimeAt is current_time's handler, reading the clock now.
func currentTimeAt(now func() time.Time) func(context.Context, currentTimeIn, string) (currentTime, error) {
	return func(_ context.Context, in currentTimeIn, _ string) (currentTime, error) {
		name := strings.TrimSpace(in.TimeZone)
		if name == "" {
			name = "UTC"
		}
		if len(name) > 64 || name == "Local" {
			return currentTime{}, fmt.Errorf("%q is not an IANA time zone name such as Europe/Paris", name)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return currentTime{}, fmt.Errorf("%q is not an IANA time zone name such as Europe/Paris", name)
		}
		t := now().In(loc).Truncate(time.Second)
		abbr, _ := t.Zone()
		return currentTime{Time: t.Format(time.RFC3339), Weekday: t.Weekday().String(), TimeZone: loc.String(), Abbreviation: abbr}, nil
	}
}

// Bounds of earlier_answers' result, so a long thread cannot fill the model's context.
const (
	defaultEarlierAnswers = 3
	maxEarlierAnswers     = 10
	maxEarlierAnswerChars = 2000
	maxEarlierTotalChars  = 8000
)

type earlierAnswersIn struct {
	Last     int    `json:"last,omitempty" jsonschema:"minimum=0,maximum=10,description=How many of the most recent answers to return (default 3; at most 10)"`
	Contains string `json:"contains,omitempty" jsonschema:"maxLength=200,description=Only answers containing this text (case-insensitive); empty for any"`
}

// earlierAnswer is one of the bot's earlier answers in the thread.
type earlierAnswer struct {
	// TS is the message's Slack timestamp.
	TS   string `json:"ts"`
	Text string `json:"text"`
	// Cut says the text was shortened to fit.
	Cut bool `json:"cut,omitempty"`
}

type earlierAnswers struct {
	Answers []earlierAnswer `json:"answers"`
	// Total is how many answers of the bot the thread holds before the question (matching
	// Contains, when given).
	Total int    `json:"total"`
	Note  string `json:"note,omitempty"`
}

// earlierAnswersTool reads the bot's own earlier answers in the thread of the question being
// answered, through the thread read the answer does for its history (one read for both):
// from the bot's thread memory (Config.Memory), where its answers are recorded as shown, or,
// without one, from Slack, recognising the bot's answers by the reply metadata slackrelay
// puts on every message it posts.
func earlierAnswersTool() agent.Tool {
	return agent.NewTool(ToolEarlierAnswers,
		"Returns your own earlier answers in this Slack thread, newest last. Use it when the user refers to something you said before "+
			"in this thread (\"as you said above\", \"the second option\") and it is not in the conversation you were given.",
		readEarlierAnswers, agent.Timeout(10*time.Second))
}

// readEarlierAnswers is earlier_answers' handler: the answers of the thread in ctx.
func readEarlierAnswers(ctx context.Context, in earlierAnswersIn, _ string) (earlierAnswers, error) {
	th, ok := ctx.Value(threadKey{}).(*thread)
	if !ok {
		return earlierAnswers{}, errors.New("no Slack thread is available here")
	}
	msgs, err := th.messages(ctx)
	if err != nil {
		return earlierAnswers{}, err
	}
	return pickAnswers(msgs, in), nil
}

// pickAnswers chooses the answers earlier_answers returns from the thread's messages.
func pickAnswers(msgs []threadMessage, in earlierAnswersIn) earlierAnswers {
	last := in.Last
	if last <= 0 {
		last = defaultEarlierAnswers
	}
	last = min(last, maxEarlierAnswers)
	needle := strings.ToLower(strings.TrimSpace(in.Contains))
	var ours []threadMessage
	for _, m := range msgs {
		if m.Ours && strings.TrimSpace(m.Text) != "" && (needle == "" || strings.Contains(strings.ToLower(m.Text), needle)) {
			ours = append(ours, m)
		}
	}
	out := earlierAnswers{Answers: []earlierAnswer{}, Total: len(ours)}
	if len(ours) == 0 {
		out.Note = "you have not answered in this thread before this question"
		if needle != "" {
			out.Note = "none of your earlier answers in this thread contains that text"
		}
		return out
	}
	room := maxEarlierTotalChars
	for i := len(ours) - 1; i >= 0 && len(out.Answers) < last && room > 0; i-- {
		text := textcut.Truncate(ours[i].Text, min(maxEarlierAnswerChars, room))
		room -= len(text)
		out.Answers = append(out.Answers, earlierAnswer{TS: ours[i].TS, Text: text, Cut: len(text) < len(ours[i].Text)})
	}
	for i, j := 0, len(out.Answers)-1; i < j; i, j = i+1, j-1 {
		out.Answers[i], out.Answers[j] = out.Answers[j], out.Answers[i]
	}
	if len(out.Answers) < len(ours) {
		out.Note = fmt.Sprintf("the %d most recent of %d answers", len(out.Answers), len(ours))
	}
	return out
}

// threadKey holds the answer's thread in the context its tools run in (earlier_answers).
type threadKey struct{}

// withThread gives the tools run under ctx the thread being answered.
func withThread(ctx context.Context, th *thread) context.Context {
	return context.WithValue(ctx, threadKey{}, th)
}
