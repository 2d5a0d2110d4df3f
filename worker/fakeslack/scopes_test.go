package fakeslack

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

// repoManifestScopes reads the repository's manifest by its explicit path.
func repoManifestScopes(t *testing.T) []string {
	t.Helper()
	path, err := FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "slack-app-manifest.yaml" {
		t.Fatalf("found %s, want the repository's infra/slack-app-manifest.yaml", path)
	}
	scopes, err := ManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	return scopes
}

func without(scopes []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == drop })
}

func TestMissingScopeWithSlackGo(t *testing.T) {
	t.Parallel()
	granted := without(repoManifestScopes(t), "chat:write")
	s, base := newTest(t, Options{Scopes: granted})
	api := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()

	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hello", false))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("PostMessage without chat:write: got %v (%T), want a slack.SlackErrorResponse", err, err)
	}
	want := slack.SlackErrorResponse{Err: "missing_scope", Needed: "chat:write", Provided: strings.Join(granted, ",")}
	if diff := cmp.Diff(want, se); diff != "" {
		t.Fatalf("PostMessage without chat:write (-want +got):\n%s", diff)
	}
	if n := len(s.Posts()); n != 0 {
		t.Fatalf("got %d posts from a call without its scope, want 0", n)
	}

	// The same at the HTTP level, as Slack answers it.
	r := form(t, base, "chat.update", vals("channel", "C1", "ts", "1700000000.000100", "text", "x"))
	if r.status != 200 || r.ok() || r.str("error") != "missing_scope" || r.str("needed") != "chat:write" ||
		r.str("provided") != strings.Join(granted, ",") {
		t.Fatalf("chat.update without chat:write = %d %v, want 200 missing_scope needed chat:write provided %s",
			r.status, r.body, strings.Join(granted, ","))
	}

	// A granted method still works, and auth.test needs no scope.
	if err := api.AddReactionContext(ctx, "eyes", slack.NewRefToMessage("C1", "1700000000.000100")); err != nil {
		t.Fatalf("reactions.add with reactions:write: got %v, want nil", err)
	}
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatalf("auth.test: got %v, want nil", err)
	}
}

func TestNoScopes(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{Scopes: []string{}})
	if r := form(t, base, "auth.test", vals()); !r.ok() {
		t.Fatalf("auth.test with no scopes = %v, want ok", r.body)
	}
	r := form(t, base, "reactions.remove", vals("channel", "C1", "timestamp", "1.000001", "name", "x"))
	if r.str("error") != "missing_scope" || r.str("needed") != "reactions:write" || r.body["provided"] != "" {
		t.Fatalf("reactions.remove with no scopes = %v, want missing_scope needed reactions:write provided \"\"", r.body)
	}
	// An unknown method is unknown whatever the scopes.
	if r := form(t, base, "files.upload", vals()); r.str("error") != "unknown_method" {
		t.Fatalf("files.upload = %v, want unknown_method", r.body)
	}
	// Without a channel, a history method answers channel_not_found, not a guessed scope.
	if r := form(t, base, "conversations.history", vals()); r.str("error") != "channel_not_found" {
		t.Fatalf("conversations.history without channel = %v, want channel_not_found", r.body)
	}
}

func TestHistoryScopeByConversationKind(t *testing.T) {
	t.Parallel()
	declared := map[string]ChannelKind{"CPRIVATE": PrivateChannel, "GMPIM": MPIM, "DSHARED": PublicChannel}
	channels := []struct {
		id   string
		kind ChannelKind
	}{
		{"C1", PublicChannel},
		{"X1", PublicChannel}, // no known prefix: public
		{"G1", PrivateChannel},
		{"D1", IM},
		{"CPRIVATE", PrivateChannel},
		{"GMPIM", MPIM},
		{"DSHARED", PublicChannel},
	}
	for _, kind := range []ChannelKind{PublicChannel, PrivateChannel, IM, MPIM} {
		scope := historyScopes[kind]
		t.Run(scope, func(t *testing.T) {
			t.Parallel()
			_, base := newTest(t, Options{Scopes: []string{scope, "chat:write"}, ChannelKinds: declared})
			for _, ch := range channels {
				for _, method := range []string{"conversations.history", "conversations.replies"} {
					r := form(t, base, method, vals("channel", ch.id, "ts", "1700000000.000100"))
					if ch.kind == kind {
						if r.str("error") == "missing_scope" {
							t.Errorf("%s in %s (%s) with %s = %v, want no missing_scope", method, ch.id, ch.kind, scope, r.body)
						}
						continue
					}
					if needed := historyScopes[ch.kind]; r.str("error") != "missing_scope" || r.str("needed") != needed ||
						r.str("provided") != scope+",chat:write" {
						t.Errorf("%s in %s (%s) with %s = %v, want missing_scope needed %s", method, ch.id, ch.kind, scope, r.body, needed)
					}
				}
			}
		})
	}
}

func TestRequiredScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		kind   ChannelKind
		want   string
		wantOK bool
	}{
		{"auth.test", "", "", true},
		{"chat.postMessage", "", "chat:write", true},
		{"chat.update", IM, "chat:write", true},
		{"chat.postEphemeral", "", "chat:write", true},
		{"chat.delete", "", "chat:write", true},
		{"reactions.add", "", "reactions:write", true},
		{"reactions.remove", "", "reactions:write", true},
		{"conversations.replies", PublicChannel, "channels:history", true},
		{"conversations.replies", PrivateChannel, "groups:history", true},
		{"conversations.replies", IM, "im:history", true},
		{"conversations.replies", MPIM, "mpim:history", true},
		{"conversations.history", PublicChannel, "channels:history", true},
		{"conversations.history", MPIM, "mpim:history", true},
		{"conversations.history", "", "", false},
		{"conversations.history", "shared_channel", "", false},
		{"files.upload", "", "", false},
		{"chat.startStream", PublicChannel, "chat:write", true},
		{"chat.appendStream", IM, "chat:write", true},
		{"chat.stopStream", "", "chat:write", true},
		{"views.open", "", "", true},
		{"views.push", "", "", true},
		{"views.update", "", "", true},
		{"assistant.threads.setStatus", IM, "chat:write,assistant:write", true},
		{"assistant.threads.setSuggestedPrompts", "", "assistant:write", true},
		{"assistant.threads.setTitle", "", "assistant:write", true},
	}
	for _, tc := range tests {
		if got, ok := RequiredScope(tc.method, tc.kind); got != tc.want || ok != tc.wantOK {
			t.Errorf("RequiredScope(%q, %q) = %q, %v; want %q, %v", tc.method, tc.kind, got, ok, tc.want, tc.wantOK)
		}
	}
}

// Every method the server answers has its scope in the table, and the table lists nothing
// the server does not answer.
func TestEveryServedMethodHasAScope(t *testing.T) {
	t.Parallel()
	served := slices.Sorted(maps.Keys(apiMethods))
	inTable := slices.Sorted(maps.Keys(methodScopes))
	if diff := cmp.Diff(inTable, served); diff != "" {
		t.Fatalf("methods served vs methods in the scope table (-table +served):\n%s", diff)
	}
}

func TestManifestScopes(t *testing.T) {
	t.Parallel()
	got, err := ManifestScopes(filepath.Join("testdata", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"chat:write", "im:history", "reactions:write"}, got); diff != "" {
		t.Fatalf("ManifestScopes (-want +got):\n%s", diff)
	}

	// A server given that manifest grants exactly those scopes.
	_, base := newTest(t, Options{Manifest: filepath.Join("testdata", "manifest.yaml")})
	r := form(t, base, "conversations.replies", vals("channel", "C1", "ts", "1700000000.000100"))
	if r.str("error") != "missing_scope" || r.str("needed") != "channels:history" ||
		r.str("provided") != "chat:write,im:history,reactions:write" {
		t.Fatalf("conversations.replies in C1 = %v, want missing_scope needed channels:history provided the manifest's", r.body)
	}
	if r := form(t, base, "conversations.replies", vals("channel", "D1", "ts", "1700000000.000100")); r.str("error") != "thread_not_found" {
		t.Fatalf("conversations.replies in D1 = %v, want thread_not_found (im:history granted)", r.body)
	}
}

// With no Scopes, the token holds exactly the repository manifest's bot scopes, which cover
// reading threads in every kind of conversation.
func TestDefaultScopesAreTheRepositoryManifest(t *testing.T) {
	t.Parallel()
	want := repoManifestScopes(t)
	def, err := ManifestScopes("")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, def); diff != "" {
		t.Fatalf("ManifestScopes(\"\") vs the repository manifest (-want +got):\n%s", diff)
	}
	s, base := newTest(t, Options{})
	if diff := cmp.Diff(want, s.scopes); diff != "" {
		t.Fatalf("default grant vs the repository manifest (-want +got):\n%s", diff)
	}
	for _, ch := range []string{"C1", "G1", "D1"} {
		if r := form(t, base, "conversations.replies", vals("channel", ch, "ts", "1700000000.000100")); r.str("error") != "thread_not_found" {
			t.Errorf("conversations.replies in %s = %v, want thread_not_found (history scope granted)", ch, r.body)
		}
	}
}
