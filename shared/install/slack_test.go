package install

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// oauthServer answers oauth.v2.access as Slack documents it, for the refresh_token grant of
// client C1 / secret S1: refresh token xoxe-1-good works, others are invalid_refresh_token.
func oauthServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/oauth.v2.access" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.PostForm.Get("refresh_token") == "xoxe-1-down":
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		case r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("client_id") != "C1":
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_grant_type"}`))
		case r.PostForm.Get("client_secret") != "S1":
			_, _ = w.Write([]byte(`{"ok":false,"error":"bad_client_secret"}`))
		case r.PostForm.Get("refresh_token") != "xoxe-1-good":
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_refresh_token"}`))
		default:
			_, _ = w.Write([]byte(`{"ok":true,"app_id":"A1","access_token":"xoxb-new","expires_in":43200,` +
				`"refresh_token":"xoxe-1-next","token_type":"bot","scope":"chat:write","bot_user_id":"U1",` +
				`"team":{"id":"T1","name":"One"},"enterprise":null,"is_enterprise_install":false}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSlackRefresher(t *testing.T) {
	t.Parallel()
	srv := oauthServer(t)
	good := SlackRefresher{HTTP: srv.Client(), ClientID: "C1", ClientSecret: "S1", APIURL: srv.URL + "/api/"}
	ctx := context.Background()

	got, err := good.Refresh(ctx, "xoxe-1-good")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Refreshed{AccessToken: "xoxb-new", RefreshToken: "xoxe-1-next", ExpiresIn: 12 * time.Hour}, got); d != "" {
		t.Errorf("refresh (-want +got):\n%s", d)
	}

	_, err = good.Refresh(ctx, "xoxe-1-spent")
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Code != "invalid_refresh_token" {
		t.Errorf("a spent refresh token: %v, want a RefusedError invalid_refresh_token", err)
	}

	badSecret := good
	badSecret.ClientSecret = "wrong"
	for name, c := range map[string]struct {
		r     SlackRefresher
		token string
		want  string
	}{
		"bad secret": {badSecret, "xoxe-1-good", "bad_client_secret"},
		"slack down": {good, "xoxe-1-down", "503"},
	} {
		_, err := c.r.Refresh(ctx, c.token)
		if err == nil || errors.As(err, &refused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a retryable error naming %s", name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), c.token) || strings.Contains(err.Error(), c.r.ClientSecret)) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}
