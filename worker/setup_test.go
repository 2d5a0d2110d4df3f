package worker

import (
	"context"
	"strings"
	"testing"
)

func TestSetupSecrets(t *testing.T) {
	var s Setup // as a bot's own test builds it
	direct := s.Secret("", "sk-local")
	if v, err := direct(context.Background()); err != nil || v != "sk-local" {
		t.Fatalf("a value given directly: %q, %v", v, err)
	}
	fromSSM := s.Secret("/bot/api-key", "")
	if _, err := fromSSM(context.Background()); err == nil || !strings.Contains(err.Error(), "before the worker started") {
		t.Fatalf("an SSM secret read before start: %v, want a clear error", err)
	}
	if s.params["bot_secret_0"] != "/bot/api-key" {
		t.Fatalf("params = %v, want the parameter declared for the store", s.params)
	}
}
