package fakeslack

import "strings"

// ChannelKind is the kind of a conversation, named as Slack's conversations.list `types`
// parameter names them. The history scope conversations.replies and conversations.history
// need depends on it.
type ChannelKind string

// The four conversation kinds.
const (
	PublicChannel  ChannelKind = "public_channel"
	PrivateChannel ChannelKind = "private_channel"
	IM             ChannelKind = "im"
	MPIM           ChannelKind = "mpim"
)

// historyScopes is the scope that reads messages in each kind of conversation.
var historyScopes = map[ChannelKind]string{
	PublicChannel:  "channels:history",
	PrivateChannel: "groups:history",
	IM:             "im:history",
	MPIM:           "mpim:history",
}

// byKind marks a method whose scope is the history scope of the conversation's kind.
const byKind = "<history scope of the conversation's kind>"

// methodScopes is the bot scope each Web API method this server answers needs. It mirrors
// the "Required scopes" (bot token) section of Slack's page for each method
// (https://docs.slack.dev/reference/methods/<method>). No scope means none is needed; several
// are alternatives, any one of which is enough (assistant.threads.setStatus takes
// assistant:write or, since 2026-03-05, chat:write). Every method the server serves is listed
// here, and only those: a call of a method missing from this table answers unknown_method.
var methodScopes = map[string][]string{
	"auth.test":                             nil,
	"chat.postMessage":                      {"chat:write"},
	"chat.update":                           {"chat:write"},
	"chat.postEphemeral":                    {"chat:write"},
	"chat.delete":                           {"chat:write"},
	"chat.startStream":                      {"chat:write"},
	"chat.appendStream":                     {"chat:write"},
	"chat.stopStream":                       {"chat:write"},
	"reactions.add":                         {"reactions:write"},
	"reactions.remove":                      {"reactions:write"},
	"conversations.replies":                 {byKind},
	"conversations.history":                 {byKind},
	"views.open":                            nil,
	"views.push":                            nil,
	"views.update":                          nil,
	"assistant.threads.setStatus":           {"chat:write", "assistant:write"},
	"assistant.threads.setSuggestedPrompts": {"assistant:write"},
	"assistant.threads.setTitle":            {"assistant:write"},
	"auth.revoke":                           nil,
	"apps.uninstall":                        nil,
}

// RequiredScope returns the bot scope a call of method in a conversation of the given kind
// needs ("" when the method needs none), and false when this server does not serve method
// or, for a method whose scope depends on the conversation, kind is not one of the four
// kinds. kind is ignored for methods that need the same scope everywhere. A method that
// accepts any one of several scopes returns them joined by commas, the way Slack's
// missing_scope answer names them in `needed`.
func RequiredScope(method string, kind ChannelKind) (string, bool) {
	scopes, ok := methodScopes[method]
	if !ok {
		return "", false
	}
	if len(scopes) == 1 && scopes[0] == byKind {
		scope, ok := historyScopes[kind]
		return scope, ok
	}
	return strings.Join(scopes, ","), true
}

// kindOf is the kind of conversation id: the kind declared in Options.ChannelKinds, else the
// kind Slack's id prefix tells: C public channel, G private channel (older private channels
// and group DMs; newer private channels also start with C, so declare those), D direct
// message. Any other id counts as a public channel. Group DMs must be declared.
func (s *Server) kindOf(channel string) ChannelKind {
	if k, ok := s.opts.ChannelKinds[channel]; ok {
		return k
	}
	switch {
	case strings.HasPrefix(channel, "G"):
		return PrivateChannel
	case strings.HasPrefix(channel, "D"):
		return IM
	default:
		return PublicChannel
	}
}

// missingScope returns the scope a call of method with p lacks (alternatives joined by
// commas), or "" when the token has what the call needs. A history call without a channel
// is let through: the method then answers channel_not_found, as Slack does.
func (s *Server) missingScope(method string, p params) string {
	scopes := methodScopes[method]
	if len(scopes) == 1 && scopes[0] == byKind {
		ch := p.get("channel")
		if ch == "" {
			return ""
		}
		scopes = []string{historyScopes[s.kindOf(ch)]}
	}
	if len(scopes) == 0 {
		return ""
	}
	granted, _ := s.tokenScopes(p.token)
	for _, sc := range scopes {
		if granted[sc] {
			return ""
		}
	}
	return strings.Join(scopes, ",")
}

// tokenScopes are the scopes token holds: what its OAuth install granted, as Slack grants
// exactly the scopes an install asked for, or the server's for a token it was given.
func (s *Server) tokenScopes(tok string) (granted map[string]bool, provided []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[tok]; t != nil && t.granted != nil {
		return t.granted, t.scopes
	}
	return s.granted, s.scopes
}

// missingScopeResponse is Slack's answer to a call of token without the scope it needs.
func (s *Server) missingScopeResponse(tok, needed string) obj {
	_, provided := s.tokenScopes(tok)
	return obj{"ok": false, "error": "missing_scope", "needed": needed, "provided": strings.Join(provided, ",")}
}
