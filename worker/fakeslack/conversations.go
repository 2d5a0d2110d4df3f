package fakeslack

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Page sizes, as Slack's method pages give them: conversations.replies returns up to 1000
// messages by default and at most 1000; conversations.history 100 by default, at most 999.
const (
	repliesDefaultLimit = 1000
	repliesMaxLimit     = 1000
	historyDefaultLimit = 100
	historyMaxLimit     = 999
)

// page is where a paginated read starts and how much it returns.
type page struct {
	limit  int
	cursor int64 // timestamp (microseconds) of the first message to return; 0 = start
}

// readPage reads `limit` (missing or 0: def; above max: max) and `cursor` (a next_cursor
// this server returned). Bad values answer invalid_limit / invalid_cursor.
func readPage(p params, def, max int) (page, string) {
	pg := page{limit: def}
	if l := p.get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return pg, "invalid_limit"
		}
		if n > 0 {
			pg.limit = min(n, max)
		}
	}
	if c := p.get("cursor"); c != "" {
		at, ok := decodeCursor(c)
		if !ok {
			return pg, "invalid_cursor"
		}
		pg.cursor = at
	}
	return pg, ""
}

// A cursor is opaque to clients. Like Slack's, it is base64 of "next_ts:" and the timestamp
// (in microseconds) of the message the next page starts with.
const cursorPrefix = "next_ts:"

func encodeCursor(at int64) string {
	return base64.StdEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(at, 10)))
}

func decodeCursor(c string) (int64, bool) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, false
	}
	at, err := strconv.ParseInt(rest, 10, 64)
	return at, err == nil && at > 0
}

// paginated is Slack's answer for one page of msgs; next is the timestamp the following
// page starts with (0: this is the last page).
func paginated(msgs []obj, next int64) obj {
	cursor := ""
	if next != 0 {
		cursor = encodeCursor(next)
	}
	return obj{"ok": true, "messages": msgs, "has_more": next != 0,
		"response_metadata": obj{"next_cursor": cursor}}
}

// replies is conversations.replies: the thread's parent first, then its replies oldest
// first, a page at a time. The parent comes on the first page only; later pages continue
// with the replies after the previous page. ts may be the parent's or a reply's.
func (s *Server) replies(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, false); code != "" {
		return slackErr(code)
	}
	if ts == "" {
		return slackErr("thread_not_found")
	}
	pg, code := readPage(p, repliesDefaultLimit, repliesMaxLimit)
	if code != "" {
		return slackErr(code)
	}
	withMeta := p.bool("include_all_metadata")
	s.mu.Lock()
	defer s.mu.Unlock()
	thread, replies, found := s.threadLocked(ch, ts)
	if !found {
		return slackErr("thread_not_found")
	}
	start := 0
	for start < len(thread) && thread[start].at < pg.cursor {
		start++
	}
	end := min(start+pg.limit, len(thread))
	msgs := make([]obj, 0, end-start)
	for _, m := range thread[start:end] {
		n := 0
		if m.threadTS == "" || m.threadTS == m.ts {
			n = replies
		}
		msgs = append(msgs, s.messageJSONLocked(m, withMeta, n))
	}
	var next int64
	if end < len(thread) {
		next = thread[end].at
	}
	return paginated(msgs, next)
}

// history is conversations.history: the channel's messages, newest first, without thread
// replies (a parent shows reply_count), a page at a time. oldest, latest and inclusive are
// not supported.
func (s *Server) history(p params) obj {
	ch := p.get("channel")
	if code := s.checkChannel(ch, false); code != "" {
		return slackErr(code)
	}
	pg, code := readPage(p, historyDefaultLimit, historyMaxLimit)
	if code != "" {
		return slackErr(code)
	}
	withMeta := p.bool("include_all_metadata")
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := s.replyCountsLocked(ch)
	all := s.messages[ch]
	msgs := []obj{}
	var next int64
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if (m.threadTS != "" && m.threadTS != m.ts) || (pg.cursor != 0 && m.at > pg.cursor) {
			continue
		}
		if len(msgs) == pg.limit {
			next = m.at
			break
		}
		msgs = append(msgs, s.messageJSONLocked(m, withMeta, counts[m.ts]))
	}
	return paginated(msgs, next)
}
