package worker

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/engine"
)

// botClients keeps a slack-go client per bot token, and the bot's ids per token (auth.test,
// asked once), for both modes: the one workspace's token (oneWorkspace) and each
// installation's (tenants). A client is built again only for a new token (a rotation).
type botClients struct {
	apiURL string
	http   *http.Client

	mu      sync.Mutex
	clients map[string]*slack.Client
	ids     map[string]engine.Identity
}

func newBotClients(apiURL string, httpClient *http.Client) *botClients {
	return &botClients{apiURL: apiURL, http: httpClient, clients: map[string]*slack.Client{}, ids: map[string]engine.Identity{}}
}

// maxBotClients bounds the clients and ids kept: rotated tokens pile up, and both are cheap
// to make again.
const maxBotClients = 1000

// client is token's client.
func (b *botClients) client(token string) *slack.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.clients[token]
	if !ok {
		if len(b.clients) >= maxBotClients {
			clear(b.clients)
		}
		c = slack.New(token, slack.OptionAPIURL(b.apiURL), slack.OptionHTTPClient(b.http))
		b.clients[token] = c
	}
	return c
}

// identity is the bot's ids behind token, from auth.test once per token.
func (b *botClients) identity(ctx context.Context, token string) (engine.Identity, error) {
	b.mu.Lock()
	id, ok := b.ids[token]
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	resp, err := b.client(token).AuthTestContext(ctx)
	if err != nil {
		return engine.Identity{}, fmt.Errorf("auth.test: %w", err)
	}
	id = engine.Identity{UserID: resp.UserID, BotID: resp.BotID}
	b.mu.Lock()
	if len(b.ids) >= maxBotClients {
		clear(b.ids)
	}
	b.ids[token] = id
	b.mu.Unlock()
	return id, nil
}

// oneWorkspace answers every event with the one bot token, whatever its tenant: read from
// the secret store (cached, re-read after its max age, so a rotation is picked up).
type oneWorkspace struct {
	readToken func(ctx context.Context) (string, error)
	clients   *botClients
}

func (o *oneWorkspace) token(ctx context.Context) (string, error) {
	token, err := o.readToken(ctx)
	if err != nil {
		return "", fmt.Errorf("bot token: %w", err)
	}
	return token, nil
}

// client is engine.Config.Slack.
func (o *oneWorkspace) client(ctx context.Context, _ engine.Tenant) (*slack.Client, error) {
	token, err := o.token(ctx)
	if err != nil {
		return nil, err
	}
	return o.clients.client(token), nil
}

// identity is engine.Config.Identity.
func (o *oneWorkspace) identity(ctx context.Context, _ engine.Tenant) (engine.Identity, error) {
	token, err := o.token(ctx)
	if err != nil {
		return engine.Identity{}, err
	}
	return o.clients.identity(ctx, token)
}
