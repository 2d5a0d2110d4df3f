package fakeslack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// manifestNames are where a repository keeps its Slack app manifest, relative to a folder
// at or above the working directory: slackrelay's own place first.
var manifestNames = []string{"infra/slack-app-manifest.yaml", "slack-app-manifest.yaml", "manifest.yaml", "manifest.yml"}

// FindManifest returns the Slack app manifest nearest the working directory: the first of
// infra/slack-app-manifest.yaml, slack-app-manifest.yaml, manifest.yaml or manifest.yml in it
// or a folder above it.
func FindManifest() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, name := range manifestNames {
			p := filepath.Join(d, filepath.FromSlash(name))
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Slack app manifest (%s) in %s or above it", strings.Join(manifestNames, ", "), wd)
		}
	}
}

// ManifestScopes returns the bot scopes (oauth_config.scopes.bot) of the Slack app manifest
// at path, in the manifest's order. An empty path means the repository's manifest,
// the one FindManifest finds.
func ManifestScopes(path string) ([]string, error) {
	if path == "" {
		found, err := FindManifest()
		if err != nil {
			return nil, fmt.Errorf("fakeslack: find the app manifest: %w", err)
		}
		path = found
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fakeslack: read the app manifest: %w", err)
	}
	var m struct {
		OAuthConfig struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("fakeslack: parse the app manifest %s: %w", path, err)
	}
	scopes := m.OAuthConfig.Scopes.Bot
	if len(scopes) == 0 {
		return nil, fmt.Errorf("fakeslack: the app manifest %s lists no oauth_config.scopes.bot", path)
	}
	for _, sc := range scopes {
		if strings.TrimSpace(sc) == "" {
			return nil, fmt.Errorf("fakeslack: the app manifest %s lists an empty bot scope", path)
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
