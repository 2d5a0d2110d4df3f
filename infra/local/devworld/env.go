package devworld

import (
	"os"
	"strconv"
	"strings"

	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// The environments the binaries are started with. Every name comes from the binaries'
// tables, so the env_test check that each loads cleanly through its own loader covers a
// rename too.

// kv is one NAME=value entry of a process environment.
func kv(name, value string) string { return name + "=" + value }

// baseEnv is what every binary gets: PATH, HOME, the log level under logLevelVar and the
// AWS region and placeholder credentials of the local servers.
func (s *World) baseEnv(logLevelVar string) []string {
	level := "info"
	if s.opts.Debug {
		level = "debug"
	}
	return []string{
		kv("PATH", os.Getenv("PATH")), kv("HOME", os.Getenv("HOME")), kv(logLevelVar, level),
		kv(awsclient.EnvRegion, awsclient.DefaultRegion),
		kv(awsclient.EnvAccessKeyID, "local"), kv(awsclient.EnvSecretAccessKey, "local"),
	}
}

// ReceiverEnv is the environment StartReceiver gives the receiver, listening on addr, its
// SQS client going through SQSProxy. Later entries of an environment win, so a caller may
// append overrides.
// With Options.ManyWorkspaces it also serves the install pages, against the local Slack's
// consent page and oauth.v2.access, storing installations in InstallationsTable.
func (s *World) ReceiverEnv(addr string) []string {
	env := append(s.baseEnv(receiverconfig.EnvLogLevel),
		kv(awsclient.EndpointVar("SQS"), s.SQSProxy.URL()),
		kv(receiverconfig.EnvEventsQueueURL, s.Local.QueueURL),
		kv(receiverconfig.EnvSlackSigningSecret, s.opts.SigningSecret),
		kv(receiverconfig.EnvListenAddr, addr),
	)
	if s.InstallationsTable != "" {
		env = append(env,
			kv(awsclient.EndpointVar("DYNAMODB"), s.Local.DynamoDBEndpoint),
			kv(receiverconfig.EnvInstallationsTable, s.InstallationsTable),
			kv(receiverconfig.EnvSlackClientID, fakeslack.DefaultClientID),
			kv(receiverconfig.EnvSlackClientSecret, fakeslack.DefaultClientSecret),
			kv(receiverconfig.EnvAuthorizeURL, s.Slack.AuthorizeURL()),
			kv(receiverconfig.EnvSlackAPIURL, s.Slack.APIURL()),
		)
	}
	return env
}

// WorkerEnv is the environment StartWorker gives the worker: the local queues and table (its
// DynamoDB client going through DynamoDBProxy), Slack, the LLM (the local LLM server when
// Options.LocalLLM asked for one, the local Bedrock stand-in when Options.LocalBedrock did),
// the timings and settings of Options, then Options.WorkerEnv.
func (s *World) WorkerEnv() []string {
	env := append(s.baseEnv(workerconfig.EnvLogLevel),
		kv(awsclient.EndpointVar("SQS"), s.Local.SQSEndpoint),
		kv(awsclient.EndpointVar("DYNAMODB"), s.DynamoDBProxy.URL()),
		kv(workerconfig.EnvEventsQueueURL, s.Local.QueueURL),
		kv(workerconfig.EnvDLQURL, s.Local.DLQURL),
		kv(workerconfig.EnvIdempotencyTable, s.Local.TableName),
		kv(workerconfig.EnvSlackAPIURL, s.slackAPIURL()),
		kv(workerconfig.EnvResponseURLs, s.responseURLs()),
		kv(assistant.EnvDemoDelay, s.opts.DemoDelay.String()),
		kv(workerconfig.EnvHandlerTimeout, s.opts.HandlerTimeout.String()),
		kv(workerconfig.EnvMaxReceiveCount, strconv.Itoa(s.opts.MaxReceiveCount)),
		kv(workerconfig.EnvBackoffBase, s.opts.BackoffBase.String()),
		kv(workerconfig.EnvBackoffMax, (8*s.opts.BackoffBase).String()),
		kv(workerconfig.EnvPollWait, "1s"),
	)
	if s.InstallationsTable != "" {
		env = append(env, kv(workerconfig.EnvInstallationsTable, s.InstallationsTable),
			kv(workerconfig.EnvSlackClientID, fakeslack.DefaultClientID), kv(workerconfig.EnvSlackClientSecret, fakeslack.DefaultClientSecret))
	} else {
		env = append(env, kv(workerconfig.EnvSlackBotToken, s.opts.BotToken))
	}
	if s.opts.DemoTokensPerSecond > 0 {
		env = append(env, kv(assistant.EnvDemoTokenRate, strconv.Itoa(s.opts.DemoTokensPerSecond)))
	}
	if s.opts.NoStreaming {
		env = append(env, kv(assistant.EnvStreaming, "off"))
	}
	for _, v := range []struct{ name, value string }{
		{assistant.EnvLLMBaseURL, s.opts.LLMBaseURL},
		{assistant.EnvLLMModel, s.opts.LLMModel},
		{assistant.EnvLLMAPIKey, s.opts.LLMAPIKey},
	} {
		if v.value != "" {
			env = append(env, kv(v.name, v.value))
		}
	}
	if s.Bedrock != nil {
		env = append(env,
			kv(assistant.EnvLLMProvider, assistant.ProviderBedrock),
			kv(assistant.EnvBedrockModelID, LocalBedrockModel),
			kv(assistant.EnvBedrockRegion, LocalBedrockRegion),
			kv(awsclient.EndpointVar("BEDROCK_RUNTIME"), s.Bedrock.URL()),
		)
	}
	return append(env, s.opts.WorkerEnv...)
}

// responseURLs are where the worker may post response_url messages: Slack's host, and the
// local Slack server's (the slash commands sent to it carry its response URLs).
func (s *World) responseURLs() string {
	if s.Slack == nil {
		return relay.DefaultResponseURLPrefix
	}
	return relay.DefaultResponseURLPrefix + "," + strings.TrimSuffix(s.Slack.ResponseURL("x"), "x")
}

func (s *World) slackAPIURL() string {
	if s.opts.SlackAPIURL != "" {
		return s.opts.SlackAPIURL
	}
	return s.Slack.APIURL()
}
