package fakeslack

import "time"

// rateWindow is the window Slack's rate tiers are counted in.
const rateWindow = time.Minute

// rateKey is what a call counts against: a stream for the calls on one streamed message, a
// channel for chat.postMessage (Slack's one message per second per channel), else the method.
func rateKey(method string, p params) string {
	switch method {
	case "chat.appendStream", "chat.stopStream":
		return method + " " + p.get("channel") + " " + p.get("ts")
	case "chat.postMessage":
		return method + " " + p.get("channel")
	}
	return method
}

// rateLimit counts a call of method against Options.RateLimits and returns how long the
// caller must wait when the call is over the limit (0: go ahead). Refused calls do not count.
func (s *Server) rateLimit(method string, p params) time.Duration {
	limit := s.opts.RateLimits[method]
	if limit <= 0 {
		return 0
	}
	key := rateKey(method, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	calls := s.rateCalls[key]
	for len(calls) > 0 && now.Sub(calls[0]) >= rateWindow {
		calls = calls[1:]
	}
	if len(calls) >= limit {
		s.rateCalls[key] = calls
		return calls[0].Add(rateWindow).Sub(now)
	}
	s.rateCalls[key] = append(calls, now)
	return 0
}
