#!/usr/bin/env bash
# Deploys slackrelay: uploads build/receiver.zip and build/worker.zip to S3 under
# content-hash keys, deploys infra/template.yaml, prints the stack outputs and the Slack
# app manifest with the request URLs filled in.
#
#   ARTIFACT_BUCKET=my-bucket AWS_REGION=eu-west-1 infra/deploy.sh
#
# Environment:
#   ARTIFACT_BUCKET          required  S3 bucket in the same region for the zips
#   AWS_REGION               required  (or AWS_DEFAULT_REGION)
#   STACK_NAME               default slackrelay (at most 55 characters)
#   STAGE                    default prod
#   PARAM_PREFIX             default /slackrelay/$STAGE (same as infra/put-secrets.sh)
#   LLM_PROVIDER             demo | openai | bedrock (default: openai when LLM_BASE_URL is set,
#                            else demo)
#   LLM_BASE_URL, LLM_MODEL  openai: the OpenAI-compatible API and its model
#   BEDROCK_MODEL_ID         bedrock: model id, inference profile id or ARN (docs/deploy.md)
#   BEDROCK_MODEL_ARNS       bedrock: comma-separated foundation-model/inference-profile ARNs the
#                            worker may invoke, exactly (no wildcards)
#   BEDROCK_REGION           default empty = the stack's region
#   LLM_MAX_TOKENS, LLM_TEMPERATURE  optional; empty = the worker's and model's defaults
#   ALARM_EMAIL              optional; subscribed to the alarm topic
#   WORKER_MAX_CONCURRENCY   default 10
#   MAX_RECEIVE_COUNT        default 5
#   WORKER_TIMEOUT_SECONDS   default 120; one of 30, 60, 120, 300, 600, 900 (docs/deploy.md)
#   RECEIVER_RESERVED_CONCURRENCY  default empty = unreserved; N reserves N for the receiver
#   WORKSPACES               single | many (default single); many: the app is distributed and
#                            each workspace installs it through the stack's install page
#   SLACK_CLIENT_ID          with WORKSPACES=many: the app's client id (Basic Information)
#   DEPLOYER                 sam | aws (default: sam when on PATH, else aws)
#   DRY_RUN=1                print the plan and stop
set -euo pipefail

die() { echo "deploy: $*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

STACK_NAME="${STACK_NAME:-slackrelay}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
ARTIFACT_BUCKET="${ARTIFACT_BUCKET:-}"
STAGE="${STAGE:-prod}"
PARAM_PREFIX="${PARAM_PREFIX:-/slackrelay/$STAGE}"
LLM_BASE_URL="${LLM_BASE_URL:-}"
LLM_MODEL="${LLM_MODEL:-gpt-4o-mini}"
if [[ -n "$LLM_BASE_URL" ]]; then LLM_PROVIDER="${LLM_PROVIDER:-openai}"; else LLM_PROVIDER="${LLM_PROVIDER:-demo}"; fi
BEDROCK_MODEL_ID="${BEDROCK_MODEL_ID:-}"
BEDROCK_MODEL_ARNS="${BEDROCK_MODEL_ARNS:-}"
BEDROCK_REGION="${BEDROCK_REGION:-}"
LLM_MAX_TOKENS="${LLM_MAX_TOKENS:-}"
LLM_TEMPERATURE="${LLM_TEMPERATURE:-}"
ALARM_EMAIL="${ALARM_EMAIL:-}"
WORKER_MAX_CONCURRENCY="${WORKER_MAX_CONCURRENCY:-10}"
MAX_RECEIVE_COUNT="${MAX_RECEIVE_COUNT:-5}"
WORKER_TIMEOUT_SECONDS="${WORKER_TIMEOUT_SECONDS:-120}"
RECEIVER_RESERVED_CONCURRENCY="${RECEIVER_RESERVED_CONCURRENCY:-}"
WORKSPACES="${WORKSPACES:-single}"
SLACK_CLIENT_ID="${SLACK_CLIENT_ID:-}"
TEMPLATE=infra/template.yaml
MANIFEST=infra/slack-app-manifest.yaml

if [[ -z "${DEPLOYER:-}" ]]; then
  if command -v sam >/dev/null 2>&1; then DEPLOYER=sam; else DEPLOYER=aws; fi
fi

[[ -n "$REGION" ]] || die "set AWS_REGION"
[[ -n "$ARTIFACT_BUCKET" ]] || die "set ARTIFACT_BUCKET (an S3 bucket in $REGION for the function zips)"
[[ "$STACK_NAME" =~ ^[A-Za-z][A-Za-z0-9-]{0,54}$ ]] || die "STACK_NAME must be letters, digits and '-', at most 55 characters"
[[ "$DEPLOYER" == sam || "$DEPLOYER" == aws ]] || die "DEPLOYER must be sam or aws"
[[ "$RECEIVER_RESERVED_CONCURRENCY" =~ ^(0|[1-9][0-9]{0,4})?$ ]] ||
  die "RECEIVER_RESERVED_CONCURRENCY must be empty, 0 (both: unreserved) or a positive number"
# The template's AllowedValues for WorkerTimeoutSeconds (a test keeps the two equal).
[[ "$WORKER_TIMEOUT_SECONDS" =~ ^(30|60|120|300|600|900)$ ]] ||
  die "WORKER_TIMEOUT_SECONDS must be one of 30, 60, 120, 300, 600, 900 (docs/deploy.md)"
# The template's LLMProvider AllowedValues and Rules (a test keeps the providers equal).
[[ "$LLM_PROVIDER" =~ ^(demo|openai|bedrock)$ ]] || die "LLM_PROVIDER must be demo, openai or bedrock"
if [[ "$LLM_PROVIDER" == openai ]]; then
  [[ -n "$LLM_BASE_URL" ]] || die "LLM_PROVIDER=openai needs LLM_BASE_URL"
else
  [[ -z "$LLM_BASE_URL" ]] || die "LLM_BASE_URL is only for LLM_PROVIDER=openai (it is $LLM_PROVIDER)"
fi
if [[ "$LLM_PROVIDER" == bedrock ]]; then
  [[ -n "$BEDROCK_MODEL_ID" ]] || die "LLM_PROVIDER=bedrock needs BEDROCK_MODEL_ID (a model id, inference profile id or ARN)"
  [[ -n "$BEDROCK_MODEL_ARNS" ]] ||
    die "LLM_PROVIDER=bedrock needs BEDROCK_MODEL_ARNS, the model and inference-profile ARNs the worker may invoke (docs/deploy.md)"
fi
[[ "$BEDROCK_MODEL_ARNS" != *"*"* ]] || die "BEDROCK_MODEL_ARNS takes exact ARNs, no wildcards"
# The template's Workspaces AllowedValues and its rule ManyWorkspacesNeedAClientId.
[[ "$WORKSPACES" =~ ^(single|many)$ ]] || die "WORKSPACES must be single or many"
if [[ "$WORKSPACES" == many ]]; then
  [[ "$SLACK_CLIENT_ID" =~ ^[0-9.]+$ ]] || die "WORKSPACES=many needs SLACK_CLIENT_ID, the app's client id (Basic Information -> App Credentials)"
else
  SLACK_CLIENT_ID=""
fi
for f in build/receiver.zip build/worker.zip; do
  [[ -f "$f" ]] || die "$f is missing: run 'make build' first"
done

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
RECEIVER_KEY="$STACK_NAME/receiver-$(sha256 build/receiver.zip).zip"
WORKER_KEY="$STACK_NAME/worker-$(sha256 build/worker.zip).zip"

params=(
  "Stage=$STAGE"
  "SigningSecretParam=$PARAM_PREFIX/signing-secret"
  "BotTokenParam=$PARAM_PREFIX/bot-token"
  "LlmApiKeyParam=$PARAM_PREFIX/llm-api-key"
  "LlmBaseUrl=$LLM_BASE_URL"
  "LlmModel=$LLM_MODEL"
  "LLMProvider=$LLM_PROVIDER"
  "BedrockModelId=$BEDROCK_MODEL_ID"
  "BedrockModelArns=$BEDROCK_MODEL_ARNS"
  "BedrockRegion=$BEDROCK_REGION"
  "LLMMaxTokens=$LLM_MAX_TOKENS"
  "LLMTemperature=$LLM_TEMPERATURE"
  "AlarmEmail=$ALARM_EMAIL"
  "WorkerMaxConcurrency=$WORKER_MAX_CONCURRENCY"
  "MaxReceiveCount=$MAX_RECEIVE_COUNT"
  "WorkerTimeoutSeconds=$WORKER_TIMEOUT_SECONDS"
  "ReceiverReservedConcurrency=$RECEIVER_RESERVED_CONCURRENCY"
  "Workspaces=$WORKSPACES"
  "SlackClientId=$SLACK_CLIENT_ID"
  "ClientSecretParam=$PARAM_PREFIX/client-secret"
  "ArtifactBucket=$ARTIFACT_BUCKET"
  "ReceiverZipKey=$RECEIVER_KEY"
  "WorkerZipKey=$WORKER_KEY"
)

echo "deploy: plan"
echo "  stack      $STACK_NAME in $REGION (deployer: $DEPLOYER)"
echo "  template   $TEMPLATE"
echo "  upload     build/receiver.zip -> s3://$ARTIFACT_BUCKET/$RECEIVER_KEY"
echo "  upload     build/worker.zip   -> s3://$ARTIFACT_BUCKET/$WORKER_KEY"
echo "  parameters"
for p in "${params[@]}"; do echo "    $p"; done
echo "  secrets    read at run time from SSM under $PARAM_PREFIX/ (write them with 'make secrets')"

if [[ "${DRY_RUN:-}" == 1 ]]; then
  echo "deploy: DRY_RUN=1, stopping before any change"
  exit 0
fi

command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"

# The template check of `make test`, where cfn-lint is installed: cfn-lint with the project's
# own rules (infra/check/rules).
if command -v cfn-lint >/dev/null 2>&1; then
  infra/check/cfn-lint.sh "$TEMPLATE" || die "cfn-lint found problems in $TEMPLATE"
fi

upload() { # file key
  if aws s3api head-object --region "$REGION" --bucket "$ARTIFACT_BUCKET" --key "$2" >/dev/null 2>&1; then
    echo "deploy: s3://$ARTIFACT_BUCKET/$2 already there"
  else
    aws s3 cp --region "$REGION" --only-show-errors "$1" "s3://$ARTIFACT_BUCKET/$2"
    echo "deploy: uploaded $1 -> s3://$ARTIFACT_BUCKET/$2"
  fi
}
upload build/receiver.zip "$RECEIVER_KEY"
upload build/worker.zip "$WORKER_KEY"

if [[ "$DEPLOYER" == sam ]]; then
  sam_params=""
  for p in "${params[@]}"; do sam_params+="${p%%=*}=\"${p#*=}\" "; done
  sam deploy \
    --template-file "$TEMPLATE" \
    --stack-name "$STACK_NAME" \
    --region "$REGION" \
    --s3-bucket "$ARTIFACT_BUCKET" \
    --s3-prefix "$STACK_NAME" \
    --capabilities CAPABILITY_IAM \
    --no-confirm-changeset \
    --no-fail-on-empty-changeset \
    --parameter-overrides "$sam_params"
else
  mkdir -p build
  aws cloudformation package \
    --region "$REGION" \
    --template-file "$TEMPLATE" \
    --s3-bucket "$ARTIFACT_BUCKET" \
    --s3-prefix "$STACK_NAME" \
    --output-template-file build/packaged.yaml >/dev/null
  aws cloudformation deploy \
    --region "$REGION" \
    --template-file build/packaged.yaml \
    --stack-name "$STACK_NAME" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "${params[@]}"
fi

output() { # key
  aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

echo
echo "deploy: outputs of $STACK_NAME"
aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text | sort | sed 's/^/  /'

EVENTS_URL="$(output EventsUrl)"
API_BASE="${EVENTS_URL%/slack/events}"
[[ "$API_BASE" == https://* ]] || die "unexpected EventsUrl output: $EVENTS_URL"

# Many workspaces: the manifest's commented redirect_urls is filled in and turned on.
manifest_edit=("s#https://EXAMPLE#$API_BASE#g")
if [[ "$WORKSPACES" == many ]]; then
  manifest_edit+=(-e 's/^  # redirect_urls:$/  redirect_urls:/' -e 's#^  \#   - \(https://.*/slack/oauth_redirect\)$#    - \1#')
fi

echo
echo "deploy: Slack app manifest with this stack's URLs (paste into api.slack.com -> your app -> App Manifest):"
echo "---"
sed -e "${manifest_edit[@]}" "$MANIFEST"
if [[ "$WORKSPACES" == many ]]; then
  echo "---"
  echo "deploy: workspaces install the app from $API_BASE/slack/install (output InstallUrl); turn on"
  echo "  Manage Distribution in the app's settings first (docs/deploy.md, Distributing the app to many workspaces)"
fi
