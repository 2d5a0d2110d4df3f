package awsclient

import (
	"context"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/config"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := Load(ctx, env("AWS_REGION", "eu-west-1", "AWS_ACCESS_KEY_ID", "AKID", "AWS_SECRET_ACCESS_KEY", "S", "AWS_SESSION_TOKEN", "TOK"))
	if err != nil || cfg.Region != "eu-west-1" {
		t.Fatalf("%v %v", cfg.Region, err)
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil || c.AccessKeyID != "AKID" || c.SessionToken != "TOK" {
		t.Fatalf("credentials %+v %v", c, err)
	}
	cfg, _ = Load(ctx, env())
	if c, _ := cfg.Credentials.Retrieve(ctx); c.AccessKeyID != "local" || cfg.Region != DefaultRegion {
		t.Fatalf("local defaults: %+v %s", c, cfg.Region)
	}
	if _, err := Load(ctx, env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("lambda without credentials: %v", err)
	}
	if cfg.Retryer().MaxAttempts() != 3 {
		t.Fatal("retryer")
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	if e := Endpoint(env("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1"), "SQS"); e == nil || *e != "http://127.0.0.1:1" {
		t.Fatal(e)
	}
	if e := Endpoint(env("AWS_ENDPOINT_URL", "http://g"), "DYNAMODB"); e == nil || *e != "http://g" {
		t.Fatal(e)
	}
	if e := Endpoint(env(), "SSM"); e != nil {
		t.Fatal(*e)
	}
}

// Every variable Load and Endpoint read is documented in Vars, and every entry is read.
func TestVarsListsWhatIsRead(t *testing.T) {
	t.Parallel()
	asked := map[string]bool{}
	for _, set := range []map[string]string{nil, {EnvAccessKeyID: "AKID", EnvSecretAccessKey: "S"}} {
		record := func(k string) string { asked[k] = true; return set[k] }
		_, _ = Load(context.Background(), record)
		Endpoint(record, "SQS")
	}
	for name := range asked {
		if strings.HasPrefix(name, EnvEndpointURL+"_") {
			name = EnvEndpointURLService
		}
		if _, ok := config.Lookup(Vars, name); !ok {
			t.Errorf("%s is read but not in Vars", name)
		}
	}
	for _, v := range Vars {
		name := v.Name
		if name == EnvEndpointURLService {
			name = EndpointVar("SQS")
		}
		if !asked[name] {
			t.Errorf("Vars lists %s, which is never read", v.Name)
		}
	}
	if err := config.Validate(Vars); err != nil {
		t.Error(err)
	}
}
