package install

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// SlackRefresher is the Refresher of a Slack app: oauth.v2.access with grant refresh_token,
// through slack-go.
type SlackRefresher struct {
	// HTTP sends the request (nil: http.DefaultClient).
	HTTP interface {
		Do(*http.Request) (*http.Response, error)
	}
	ClientID     string
	ClientSecret string
	// APIURL is Slack's Web API base, ending in a slash (empty: slack-go's, https://slack.com/api/);
	// tests and the local world point it at their server.
	APIURL string
}

var _ Refresher = SlackRefresher{}

// refusedCodes are Slack's answers that mean this refresh token will never work again.
var refusedCodes = map[string]bool{
	"invalid_refresh_token": true,
	"invalid_auth":          true,
	"token_revoked":         true,
	"account_inactive":      true,
}

// Refresh implements Refresher. A refused refresh token is a *RefusedError; a bad client id or
// secret, a rate limit or a network failure is not (retrying or fixing the configuration can
// help, disabling the installation cannot).
func (r SlackRefresher) Refresh(ctx context.Context, refreshToken string) (Refreshed, error) {
	var client interface {
		Do(*http.Request) (*http.Response, error)
	} = http.DefaultClient
	if r.HTTP != nil {
		client = r.HTTP
	}
	var opts []slack.OAuthOption
	if r.APIURL != "" {
		opts = append(opts, slack.OAuthOptionAPIURL(r.APIURL))
	}
	resp, err := slack.RefreshOAuthV2TokenContext(ctx, client, r.ClientID, r.ClientSecret, refreshToken, opts...)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && refusedCodes[se.Err] {
			return Refreshed{}, &RefusedError{Code: se.Err}
		}
		return Refreshed{}, fmt.Errorf("oauth.v2.access (refresh_token grant): %w", err)
	}
	return Refreshed{
		AccessToken:  resp.AccessToken,
		RefreshToken: resp.RefreshToken,
		ExpiresIn:    time.Duration(resp.ExpiresIn) * time.Second,
	}, nil
}

// FromOAuth is the installation an oauth.v2.access answer (authorization_code grant) grants,
// as of now: the workspace's, or the org's for an org-wide install, with its bot token and
// user, app, scopes and, with token rotation, its refresh token and expiry. BotID is not in
// the answer (auth.test with the new token tells it).
func FromOAuth(resp *slack.OAuthV2Response, now time.Time) Installation {
	inst := Installation{
		TeamID:              resp.Team.ID,
		EnterpriseID:        resp.Enterprise.ID,
		IsEnterpriseInstall: resp.IsEnterpriseInstall,
		BotToken:            resp.AccessToken,
		BotUserID:           resp.BotUserID,
		AppID:               resp.AppID,
		RefreshToken:        resp.RefreshToken,
	}
	for _, s := range strings.Split(resp.Scope, ",") {
		if s = strings.TrimSpace(s); s != "" {
			inst.Scopes = append(inst.Scopes, s)
		}
	}
	if resp.ExpiresIn > 0 {
		inst.ExpiresAt = now.Add(time.Duration(resp.ExpiresIn) * time.Second).UTC()
	}
	return inst
}
