package pipeline

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// webAPIMethod maps the slack-go client methods the worker may call to the Web API method
// each one sends. A call of a client method missing here fails the test below: add it with
// its Web API method, and the manifest check then says whether the app has the scope.
var webAPIMethod = map[string]string{
	"AuthTestContext":                            "auth.test",
	"PostMessageContext":                         "chat.postMessage",
	"PostEphemeralContext":                       "chat.postEphemeral",
	"UpdateMessageContext":                       "chat.update",
	"AddReactionContext":                         "reactions.add",
	"RemoveReactionContext":                      "reactions.remove",
	"GetConversationRepliesContext":              "conversations.replies",
	"GetConversationHistoryContext":              "conversations.history",
	"OpenViewContext":                            "views.open",
	"UpdateViewContext":                          "views.update",
	"PushViewContext":                            "views.push",
	"StartStreamContext":                         "chat.startStream",
	"AppendStreamContext":                        "chat.appendStream",
	"StopStreamContext":                          "chat.stopStream",
	"SetAssistantThreadsStatusContext":           "assistant.threads.setStatus",
	"SetAssistantThreadsSuggestedPromptsContext": "assistant.threads.setSuggestedPrompts",
	"SetAssistantThreadsTitleContext":            "assistant.threads.setTitle",
}

// workerModule is the worker module's directory, whose code the scan reads.
const workerModule = "../../../worker"

// slackCalls returns the slack-go client methods called in the worker's production code
// (every .go file that is not a test, under the worker module).
func slackCalls(t *testing.T) []string {
	t.Helper()
	client := reflect.TypeFor[*slack.Client]()
	isClientMethod := map[string]bool{}
	for i := range client.NumMethod() {
		isClientMethod[client.Method(i).Name] = true
	}
	call := regexp.MustCompile(`\.([A-Z]\w*)\(`)
	found := map[string]bool{}
	err := filepath.WalkDir(workerModule, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			// Names of other types' methods that slack-go's client happens to share are not
			// Web API calls; every client call the worker makes uses the Context variant.
			if isClientMethod[m[1]] && strings.HasSuffix(m[1], "Context") {
				found[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(found))
	for m := range found {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Every Web API method the worker calls needs a scope the app's manifest grants, in every
// kind of conversation it can be called in: a missing one is Slack's missing_scope, a
// permanent failure the tests against a kinder fake would never see.
func TestManifestGrantsEveryScopeTheWorkerNeeds(t *testing.T) {
	t.Parallel()
	granted, err := fakeslack.ManifestScopes("")
	if err != nil {
		t.Fatal(err)
	}
	calls := slackCalls(t)
	if len(calls) == 0 {
		t.Fatal("found no slack-go calls in the worker: the scan is broken")
	}
	kinds := []fakeslack.ChannelKind{fakeslack.PublicChannel, fakeslack.PrivateChannel, fakeslack.IM, fakeslack.MPIM}
	for _, c := range calls {
		method, ok := webAPIMethod[c]
		if !ok {
			t.Errorf("the worker calls slack-go's %s: add its Web API method to webAPIMethod", c)
			continue
		}
		for _, kind := range kinds {
			scope, known := fakeslack.RequiredScope(method, kind)
			if !known {
				t.Errorf("%s (%s): the local Slack server does not know its scope; add it to fakeslack's table", method, c)
				break
			}
			// A method that takes either of two scopes names them comma-joined, as Slack's
			// `needed` does; one of them is enough.
			if scope != "" && !slices.ContainsFunc(strings.Split(scope, ","), func(s string) bool { return slices.Contains(granted, s) }) {
				t.Errorf("%s in a %s needs %s, which infra/slack-app-manifest.yaml does not grant", method, kind, scope)
			}
		}
	}
	t.Logf("Web API methods the worker calls: %v", calls)
}
