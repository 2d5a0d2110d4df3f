package localslack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slackrelay/slackrelay/infra/local/localaws"
)

// manifestPath is where the repository keeps the Slack app manifest, relative to its root.
const manifestPath = "infra/slack-app-manifest.yaml"

// ManifestScopes returns the bot scopes (oauth_config.scopes.bot) of the Slack app manifest
// at path, in the manifest's order. An empty path means the repository's manifest,
// infra/slack-app-manifest.yaml under localaws.RepoRoot.
func ManifestScopes(path string) ([]string, error) {
	if path == "" {
		root, err := localaws.RepoRoot()
		if err != nil {
			return nil, fmt.Errorf("localslack: find the app manifest: %w", err)
		}
		path = filepath.Join(root, filepath.FromSlash(manifestPath))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localslack: read the app manifest: %w", err)
	}
	var m struct {
		OAuthConfig struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("localslack: parse the app manifest %s: %w", path, err)
	}
	scopes := m.OAuthConfig.Scopes.Bot
	if len(scopes) == 0 {
		return nil, fmt.Errorf("localslack: the app manifest %s lists no oauth_config.scopes.bot", path)
	}
	for _, sc := range scopes {
		if strings.TrimSpace(sc) == "" {
			return nil, fmt.Errorf("localslack: the app manifest %s lists an empty bot scope", path)
		}
	}
	return scopes, nil
}

// grantScopes decides the token's scopes: Options.Scopes when set (even empty), else the
// manifest's (Options.Manifest, or the repository's).
func (s *Server) grantScopes() error {
	scopes := s.opts.Scopes
	if scopes == nil {
		var err error
		if scopes, err = ManifestScopes(s.opts.Manifest); err != nil {
			return err
		}
	}
	s.scopes = make([]string, 0, len(scopes))
	s.granted = make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		if !s.granted[sc] {
			s.granted[sc] = true
			s.scopes = append(s.scopes, sc)
		}
	}
	return nil
}
