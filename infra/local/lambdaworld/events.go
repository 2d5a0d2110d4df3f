package lambdaworld

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

var requestSeq atomic.Int64

// HTTPEvent is the API Gateway HTTP API (payload format 2.0) event that hands the receiver
// function a POST of body to path, as Slack sends it: signed with secret at the current
// time (secret "" leaves it unsigned), on stage ("$default", or a named stage, which
// prefixes the raw path), the body base64-encoded when b64 is set.
func HTTPEvent(stage, path, contentType, body, secret string, b64 bool) []byte {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST " + path, RawPath: path,
		Headers: map[string]string{"content-type": contentType, "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
		Body:    body, IsBase64Encoded: b64,
	}
	if stage != "$default" {
		ev.RawPath = "/" + stage + path
	}
	if secret != "" {
		ev.Headers["x-slack-request-timestamp"] = ts
		ev.Headers["x-slack-signature"] = slackverify.Sign([]byte(secret), ts, []byte(body))
	}
	if b64 {
		ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	ev.RequestContext.Stage = stage
	ev.RequestContext.RequestID = fmt.Sprintf("apigw-%d", requestSeq.Add(1))
	ev.RequestContext.HTTP.Method = "POST"
	ev.RequestContext.HTTP.Path = ev.RawPath
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("lambdaworld: %v", err)) // strings and maps of strings only: cannot happen
	}
	return raw
}

// EnvValue is the value of name in a NAME=value environment such as
// FunctionOptions.Env ("" when it is not there): where the template says a
// function reads its secrets from, for example.
func EnvValue(env []string, name string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, name+"="); ok {
			return v
		}
	}
	return ""
}
