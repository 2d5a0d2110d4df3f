package fakeslack

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Workspaces and tokens.
//
// The server always has its default workspace (Options.TeamID, T0001 unless set) whose bot
// token is Options.Token. More workspaces, each in an Enterprise Grid org or not, come from
// Options.Workspaces or AddWorkspace. A workspace given a Token is installed with that
// (never-expiring) bot token; one without is a workspace where the app is not installed yet:
// the OAuth flow (oauth.go) installs it.
//
// Every Web API call is made as the team its token belongs to: auth.test answers that team,
// and a call naming a conversation of another workspace answers channel_not_found, as Slack
// does for a channel the token cannot see. A conversation belongs to the workspace that
// declares it (Workspace.Channels) or, when no workspace declares it, to the first one whose
// token (or whose seeded user message, UserMessage.Team) names it. An org-wide token (an
// install on the org, see oauth.go) sees the conversations of every workspace of its org.
//
// A token the server does not know answers invalid_auth, one past its expiry token_expired
// and a revoked one token_revoked. With Options.Token empty the server stays permissive: a
// token it does not know is the default workspace's.

// Workspace is a Slack workspace (team).
type Workspace struct {
	// ID is the team id (required), e.g. "T0002".
	ID string `json:"id"`
	// Name is the team's name (default: the id in lower case).
	Name string `json:"name,omitempty"`
	// EnterpriseID and EnterpriseName put the workspace in an Enterprise Grid org.
	EnterpriseID   string `json:"enterprise_id,omitempty"`
	EnterpriseName string `json:"enterprise_name,omitempty"`
	// Token, when set, installs the app in the workspace with this bot token (it never
	// expires). Empty leaves the app uninstalled until the OAuth flow installs it.
	Token string `json:"token,omitempty"`
	// BotUserID and BotID identify the app's bot user in this workspace (defaults derived
	// from the id: T0002 → UB0002, BB0002).
	BotUserID string `json:"bot_user_id,omitempty"`
	BotID     string `json:"bot_id,omitempty"`
	// Channels are the conversations of this workspace.
	Channels []string `json:"channels,omitempty"`
}

// Caller is who a token speaks for, as auth.test tells it.
type Caller struct {
	// Team is the workspace id; empty for an org-wide token.
	Team         string `json:"team_id,omitempty"`
	TeamName     string `json:"team,omitempty"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	// OrgWide is set for a token of an org-wide install (is_enterprise_install).
	OrgWide   bool   `json:"is_enterprise_install,omitempty"`
	BotUserID string `json:"user_id"`
	BotID     string `json:"bot_id"`
}

// installKey names an installation: the team id, or the enterprise id of an org-wide one.
func (c Caller) installKey() string {
	if c.OrgWide {
		return c.EnterpriseID
	}
	return c.Team
}

// token is one bot token the server issued or was given.
type token struct {
	caller  Caller
	expires time.Time // zero: never
	revoked bool
	// scopes are what an OAuth install granted it (in grant order; granted as a set); nil for a
	// token the server was given, which holds the server's scopes (Options.Scopes or the
	// manifest's).
	scopes  []string
	granted map[string]bool
}

func (w *Workspace) fillDefaults() {
	if w.Name == "" {
		w.Name = strings.ToLower(w.ID)
	}
	if w.BotUserID == "" {
		w.BotUserID = "UB" + w.ID[1:]
	}
	if w.BotID == "" {
		w.BotID = "BB" + w.ID[1:]
	}
	if w.EnterpriseID != "" && w.EnterpriseName == "" {
		w.EnterpriseName = strings.ToLower(w.EnterpriseID)
	}
}

func (w *Workspace) caller() Caller {
	return Caller{Team: w.ID, TeamName: w.Name, EnterpriseID: w.EnterpriseID, BotUserID: w.BotUserID, BotID: w.BotID}
}

// initTeamsLocked sets up the default workspace and Options.Workspaces.
func (s *Server) initTeams() error {
	s.teams = map[string]*Workspace{}
	s.tokens = map[string]*token{}
	s.owners = map[string]string{}
	s.refreshes = map[string]int{}
	def := &Workspace{ID: s.opts.TeamID, Name: s.opts.TeamName, Token: s.opts.Token,
		BotUserID: s.opts.BotUserID, BotID: s.opts.BotID}
	s.teams[def.ID] = def
	if def.Token != "" {
		s.tokens[def.Token] = &token{caller: def.caller()}
	}
	for _, w := range s.opts.Workspaces {
		if err := s.addWorkspaceLocked(w); err != nil {
			return err
		}
	}
	return nil
}

// AddWorkspace adds a workspace to a running server (see Workspace). Adding a workspace
// whose id exists, or declaring a conversation another workspace has, is an error.
func (s *Server) AddWorkspace(w Workspace) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addWorkspaceLocked(w)
}

func (s *Server) addWorkspaceLocked(w Workspace) error {
	switch {
	case w.ID == "" || !strings.HasPrefix(w.ID, "T") || len(w.ID) < 2:
		return fmt.Errorf("fakeslack: workspace id %q is not a team id like T0002", w.ID)
	case s.teams[w.ID] != nil:
		return fmt.Errorf("fakeslack: workspace %s exists", w.ID)
	case w.EnterpriseID != "" && !strings.HasPrefix(w.EnterpriseID, "E"):
		return fmt.Errorf("fakeslack: enterprise id %q is not like E0001", w.EnterpriseID)
	case w.Token != "" && s.tokens[w.Token] != nil:
		return fmt.Errorf("fakeslack: token of workspace %s is already another's", w.ID)
	}
	for _, ch := range w.Channels {
		if o := s.owners[ch]; o != "" && o != w.ID {
			return fmt.Errorf("fakeslack: conversation %s is already workspace %s's", ch, o)
		}
	}
	w.fillDefaults()
	w.Channels = append([]string(nil), w.Channels...)
	s.teams[w.ID] = &w
	for _, ch := range w.Channels {
		s.owners[ch] = w.ID
	}
	if w.Token != "" {
		s.tokens[w.Token] = &token{caller: w.caller()}
	}
	return nil
}

// Workspaces returns the workspaces, sorted by id.
func (s *Server) Workspaces() []Workspace {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Workspace, 0, len(s.teams))
	for _, w := range s.teams {
		c := *w
		c.Channels = append([]string(nil), w.Channels...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// errNoToken and friends are checkToken's answers, Slack's error codes.
var (
	errNotAuthed    = errors.New("not_authed")
	errInvalidAuth  = errors.New("invalid_auth")
	errTokenExpired = errors.New("token_expired")
	errTokenRevoked = errors.New("token_revoked")
)

// callerLocked is who tok speaks for, or Slack's error for it.
func (s *Server) callerLocked(tok string) (Caller, error) {
	t := s.tokens[tok]
	switch {
	case t == nil && s.opts.Token == "":
		return s.teams[s.opts.TeamID].caller(), nil // permissive: any token is the default team's
	case tok == "":
		return Caller{}, errNotAuthed
	case t == nil:
		return Caller{}, errInvalidAuth
	case t.revoked:
		return Caller{}, errTokenRevoked
	case !t.expires.IsZero() && !s.opts.Now().Before(t.expires):
		return Caller{}, errTokenExpired
	}
	return t.caller, nil
}

// canSeeLocked is whether the caller sees conversation ch; an unclaimed one is claimed for
// the caller's workspace (an org-wide caller claims nothing but sees unclaimed ones).
func (s *Server) canSeeLocked(c Caller, ch string) bool {
	owner := s.owners[ch]
	if owner == "" {
		if !c.OrgWide {
			s.owners[ch] = c.Team
		}
		return true
	}
	if c.OrgWide {
		w := s.teams[owner]
		return w != nil && w.EnterpriseID == c.EnterpriseID
	}
	return owner == c.Team
}

// claimLocked records that conversation ch is team's, failing when it is another's.
func (s *Server) claimLocked(team, ch string) error {
	if s.teams[team] == nil {
		return fmt.Errorf("fakeslack: no workspace %s", team)
	}
	if o := s.owners[ch]; o != "" && o != team {
		return fmt.Errorf("fakeslack: conversation %s is workspace %s's, not %s's", ch, o, team)
	}
	s.owners[ch] = team
	return nil
}

// ChannelTeam is the workspace conversation ch belongs to ("" while no workspace has it).
func (s *Server) ChannelTeam(ch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[ch]
}

// TokenOwner is who tok speaks for now, or Slack's error for it (invalid_auth,
// token_expired, token_revoked).
func (s *Server) TokenOwner(tok string) (Caller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callerLocked(tok)
}

// Advance moves the server's clock forward by d (it runs on from Options.Now): tokens,
// OAuth codes, triggers, response_urls and streams expire by it.
func (s *Server) Advance(d time.Duration) {
	s.clockMu.Lock()
	s.offset += d
	s.clockMu.Unlock()
}

// now is Options.Now plus the time Advance added.
func (s *Server) now(base func() time.Time) time.Time {
	s.clockMu.Lock()
	off := s.offset
	s.clockMu.Unlock()
	return base().Add(off)
}
