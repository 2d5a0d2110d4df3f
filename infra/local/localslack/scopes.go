package localslack

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
// (https://docs.slack.dev/reference/methods/<method>). An empty scope means none is needed.
// Every method the server serves is listed here, and only those: a call of a method missing
// from this table answers unknown_method.
var methodScopes = map[string]string{
	"auth.test":             "",
	"chat.postMessage":      "chat:write",
	"chat.update":           "chat:write",
	"chat.postEphemeral":    "chat:write",
	"chat.delete":           "chat:write",
	"reactions.add":         "reactions:write",
	"reactions.remove":      "reactions:write",
	"conversations.replies": byKind,
	"conversations.history": byKind,
}

// RequiredScope returns the bot scope a call of method in a conversation of the given kind
// needs ("" when the method needs none), and false when this server does not serve method
// or, for a method whose scope depends on the conversation, kind is not one of the four
// kinds. kind is ignored for methods that need the same scope everywhere.
func RequiredScope(method string, kind ChannelKind) (string, bool) {
	scope, ok := methodScopes[method]
	if !ok {
		return "", false
	}
	if scope != byKind {
		return scope, true
	}
	scope, ok = historyScopes[kind]
	return scope, ok
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

// missingScope returns the scope a call of method with p lacks, or "" when the token has
// what the call needs. A history call without a channel is let through: the method then
// answers channel_not_found, as Slack does.
func (s *Server) missingScope(method string, p params) string {
	scope := methodScopes[method]
	if scope == byKind {
		ch := p.get("channel")
		if ch == "" {
			return ""
		}
		scope = historyScopes[s.kindOf(ch)]
	}
	if scope == "" || s.granted[scope] {
		return ""
	}
	return scope
}

// missingScopeResponse is Slack's answer to a call without the scope it needs.
func (s *Server) missingScopeResponse(needed string) obj {
	return obj{"ok": false, "error": "missing_scope", "needed": needed,
		"provided": strings.Join(s.scopes, ",")}
}
