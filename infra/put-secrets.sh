#!/usr/bin/env bash
# Writes slackrelay's secrets as SSM SecureString parameters.
#
#   SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=xoxb-... [LLM_API_KEY=...] infra/put-secrets.sh
#
# Environment:
#   SLACK_SIGNING_SECRET  required  Slack app -> Basic Information -> Signing Secret
#   SLACK_BOT_TOKEN       required  Slack app -> OAuth & Permissions -> Bot User OAuth Token
#                                   (not with WORKSPACES=many: each install brings its own)
#   WORKSPACES            single | many (default single, as deploy.sh)
#   SLACK_CLIENT_SECRET   with WORKSPACES=many, required: Basic Information -> Client Secret
#   LLM_API_KEY           optional  written only when set
#   STAGE                 default prod
#   PARAM_PREFIX          default /slackrelay/$STAGE (must match what deploy.sh passes)
#   SIGNING_SECRET_PARAM, BOT_TOKEN_PARAM, CLIENT_SECRET_PARAM, LLM_API_KEY_PARAM  override single names
#   KMS_KEY_ID            optional customer managed key (default: aws/ssm)
#   AWS_REGION            required (or AWS_DEFAULT_REGION)
#
# The values never appear on a command line (they go through a 0600 file read by the AWS
# CLI as --value file://...) and are never printed.
set -euo pipefail
set +x # never trace: the values pass through variables

die() { echo "put-secrets: $*" >&2; exit 1; }

command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[[ -n "$REGION" ]] || die "set AWS_REGION"
STAGE="${STAGE:-prod}"
PARAM_PREFIX="${PARAM_PREFIX:-/slackrelay/$STAGE}"
SIGNING_SECRET_PARAM="${SIGNING_SECRET_PARAM:-$PARAM_PREFIX/signing-secret}"
BOT_TOKEN_PARAM="${BOT_TOKEN_PARAM:-$PARAM_PREFIX/bot-token}"
CLIENT_SECRET_PARAM="${CLIENT_SECRET_PARAM:-$PARAM_PREFIX/client-secret}"
LLM_API_KEY_PARAM="${LLM_API_KEY_PARAM:-$PARAM_PREFIX/llm-api-key}"
WORKSPACES="${WORKSPACES:-single}"
[[ "$WORKSPACES" =~ ^(single|many)$ ]] || die "WORKSPACES must be single or many"

[[ -n "${SLACK_SIGNING_SECRET:-}" ]] || die "set SLACK_SIGNING_SECRET (Slack app -> Basic Information)"
names=("$SIGNING_SECRET_PARAM")
vars=(SLACK_SIGNING_SECRET)
if [[ "$WORKSPACES" == many ]]; then
  [[ -n "${SLACK_CLIENT_SECRET:-}" ]] || die "set SLACK_CLIENT_SECRET (Slack app -> Basic Information -> App Credentials)"
  names+=("$CLIENT_SECRET_PARAM")
  vars+=(SLACK_CLIENT_SECRET)
else
  [[ -n "${SLACK_BOT_TOKEN:-}" ]] || die "set SLACK_BOT_TOKEN (Slack app -> OAuth & Permissions)"
  [[ "$SLACK_BOT_TOKEN" == xoxb-* ]] || echo "put-secrets: warning: SLACK_BOT_TOKEN does not start with xoxb- (is it the bot token?)" >&2
  names+=("$BOT_TOKEN_PARAM")
  vars+=(SLACK_BOT_TOKEN)
fi
if [[ -n "${LLM_API_KEY:-}" ]]; then
  names+=("$LLM_API_KEY_PARAM")
  vars+=(LLM_API_KEY)
fi
for n in "${names[@]}"; do
  [[ "$n" == /* ]] || die "parameter name $n must start with /"
done

echo "put-secrets: region $REGION, SecureString, key ${KMS_KEY_ID:-alias/aws/ssm}; will write:"
for i in "${!names[@]}"; do
  echo "  ${names[$i]}  (from \$${vars[$i]})"
done
if [[ -z "${LLM_API_KEY:-}" ]]; then
  echo "  (LLM_API_KEY not set: $LLM_API_KEY_PARAM is left alone; the worker uses its demo responder unless LlmBaseUrl is set)"
fi

umask 077
tmp="$(mktemp -d "${TMPDIR:-/tmp}/slackrelay-secrets.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 700 "$tmp"

key_args=()
if [[ -n "${KMS_KEY_ID:-}" ]]; then
  key_args=(--key-id "$KMS_KEY_ID")
fi

for i in "${!names[@]}"; do
  name="${names[$i]}"
  var="${vars[$i]}"
  file="$tmp/value"
  printf '%s' "${!var}" >"$file"
  chmod 600 "$file"
  version="$(aws ssm put-parameter \
    --region "$REGION" \
    --name "$name" \
    --type SecureString \
    --overwrite \
    --tier Standard \
    ${key_args[@]+"${key_args[@]}"} \
    --value "file://$file" \
    --query Version --output text)"
  rm -f "$file"
  echo "put-secrets: wrote $name (version $version)"
done
echo "put-secrets: done. The functions pick up new values within SECRETS_MAX_AGE (5m)."
