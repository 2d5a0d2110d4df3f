# slackrelay: the commands a newcomer and CI use. `make help` lists them.
SHELL := /bin/bash
MODULES := shared receiver worker infra/local examples
BUILD := build
GOFLAGS_LAMBDA := -trimpath -tags lambda.norpc -ldflags='-s -w -buildid=' -buildvcs=false
export AWS_EC2_METADATA_DISABLED := true

.PHONY: help deps chromium vet test test-go test-infra build clean demo dev bench e2e deploy secrets

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: infra/local/node_modules/.installed ## install Go modules and the local stand-ins (npm)
	@for m in $(MODULES); do (cd $$m && go mod download) || exit 1; done

infra/local/node_modules/.installed: infra/local/package.json infra/local/package-lock.json
	cd infra/local && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The install pages' browser check (infra/local/installpages) drives Debian's Chromium; it is
# installed here when missing and possible (root, apt-get; bounded, best effort), and the
# check is skipped with a message where it is not.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "== installing chromium for the install pages' browser check (apt-get, best effort)"; \
	      DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { DEBIAN_FRONTEND=noninteractive timeout 120 apt-get update -q >/dev/null 2>&1 && \
	        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
	      echo "make: apt-get install chromium failed: the browser check will be skipped"; \
	    else echo "make: no chromium: the browser check of the install pages will be skipped"; fi; }

vet: deps ## gofmt, and go vet every module, each on its own (GOWORK=off) and in the workspace
	@unformatted=$$(gofmt -l $(MODULES)); if [ -n "$$unformatted" ]; then echo "gofmt -l finds unformatted files:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "== vet $$m"; (cd $$m && GOWORK=off go build ./... && GOWORK=off go vet ./...) || exit 1; done

test: vet ## vet + every module's tests (unit, integration, fuzz seeds) + the template checks (cfn-lint with the project's rules)
	@$(MAKE) --no-print-directory -j2 test-go test-infra

# The production modules' tests find the local SQS and DynamoDB servers in the environment
# (shared/awstest), so they never import infra/local: one `slackrelay-local with-aws` starts
# the servers around their runs. infra/local's own tests start what they need themselves; they
# run alongside (the 5-minute answer in its e2e suite is mostly waiting), their output kept in
# build/test-infra-local.log and shown when they end.
test-go: deps chromium
	@cd infra/local && go build -o ../../$(BUILD)/local/slackrelay-local ./cmd/slackrelay-local
	@echo "== test infra/local (alongside the other modules; its output follows theirs)"; \
	(cd infra/local && SLACKRELAY_REQUIRE_LOCAL_STACK=1 go test -count=1 ./... > ../../$(BUILD)/test-infra-local.log 2>&1) & local=$$!; \
	trap 'pkill -INT -P $$local 2>/dev/null; kill $$local 2>/dev/null' EXIT; \
	SLACKRELAY_REQUIRE_LOCAL_STACK=1 $(BUILD)/local/slackrelay-local with-aws -- sh -c '\
	  for m in shared receiver worker; do echo "== test $$m"; (cd $$m && go test -count=1 ./...) || exit 1; done' || exit 1; \
	echo "== test examples"; (cd examples && go test -count=1 ./...) || exit 1; \
	wait $$local; rc=$$?; trap - EXIT; echo "== test infra/local"; cat $(BUILD)/test-infra-local.log; exit $$rc

test-infra: deps ## cfn-lint with the project's rules (infra/check/rules) on infra/template.yaml (any finding fails), the rules' tests, the deploy script tests
	infra/check/cfn-lint.sh infra/template.yaml
	cd infra/check && python3 -m unittest
	cd infra/check && node --test

build: ## the two Lambda zips (linux/arm64, static, reproducible) under build/
	@mkdir -p $(BUILD)
	@for f in receiver worker; do \
	  (cd $$f && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_LAMBDA) -o ../$(BUILD)/$$f/bootstrap ./cmd/$$f) || exit 1; \
	  touch -d '2000-01-01T00:00:00Z' $(BUILD)/$$f/bootstrap; chmod 0755 $(BUILD)/$$f/bootstrap; \
	  rm -f $(BUILD)/$$f.zip; (cd $(BUILD)/$$f && TZ=UTC zip -q -X -D ../$$f.zip bootstrap) || exit 1; \
	  echo "$(BUILD)/$$f.zip: $$(stat -c %s $(BUILD)/$$f/bootstrap) bytes unzipped, $$(stat -c %s $(BUILD)/$$f.zip) zipped"; \
	done

STACK_NAME ?= slackrelay

secrets: ## write the Slack secrets to SSM SecureString (env SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, optional LLM_API_KEY)
	infra/put-secrets.sh

deploy: build ## deploy the stack: make deploy STACK_NAME=slackrelay ARTIFACT_BUCKET=my-bucket (AWS_REGION set)
	STACK_NAME=$(STACK_NAME) ARTIFACT_BUCKET=$(ARTIFACT_BUCKET) infra/deploy.sh

demo: deps ## the guided tour: local stack, acked in ms, an answer streamed from a local LLM, a deduplicated retry, a worker killed mid-stream, a DLQ failure and its replay
	@cd infra/local && go build -o ../../$(BUILD)/local/slackrelay-local ./cmd/slackrelay-local
	$(BUILD)/local/slackrelay-local demo

dev: deps ## the local stack for a real Slack app (receiver on 127.0.0.1:3000) until Ctrl-C; see docs/local.md
	@cd infra/local && go build -o ../../$(BUILD)/local/slackrelay-local ./cmd/slackrelay-local
	$(BUILD)/local/slackrelay-local dev

bench: deps ## measure and write docs/benchmarks.md (in-process, HTTP ack, end to end, batch, sizes, cold start, Lambda mode, streamed answers)
	@cd infra/local && go build -o ../../$(BUILD)/local/slackrelay-local ./cmd/slackrelay-local
	$(BUILD)/local/slackrelay-local bench --out docs/benchmarks.md

e2e: deps ## only the end-to-end reliability suite (also part of `make test`)
	cd infra/local && SLACKRELAY_REQUIRE_LOCAL_STACK=1 go test -count=1 -v ./e2e

clean: ## remove build output
	rm -rf $(BUILD)
