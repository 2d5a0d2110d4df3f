#!/usr/bin/env bash
# Lints a CloudFormation template with cfn-lint, informational rules included, and with the
# project's own rules (infra/check/rules, ids E9xxx, loaded with --append-rules); any finding
# (error, warning or informational) fails. To accept one rule for a reason, list it under
# Metadata: cfn-lint: config: ignore_checks in the template (or the resource) and write the
# reason under cfn-lint: ignore_reasons (rule E9080 enforces the reason).
#
#   infra/check/cfn-lint.sh [template ...]     (default infra/template.yaml)
#
# Uses the cfn-lint found on PATH, or python3's cfnlint package (version >= 1.51, as CI
# machines have it). Only when there is none does it install the pinned version with pip (into
# ${XDG_CACHE_HOME:-~/.cache}/slackrelay/cfn-lint-<version>, nothing system-wide).
# CFN_LINT=/path/to/cfn-lint picks one explicitly.
set -euo pipefail

MIN_VERSION=1.51
PINNED_VERSION=1.51.0

die() { echo "cfn-lint.sh: $*" >&2; exit 2; }

rules_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/rules"
templates=("$@")
if [[ ${#templates[@]} -eq 0 ]]; then
  templates=("$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/template.yaml")
fi

cache_dir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/slackrelay/cfn-lint-$PINNED_VERSION"
runner=()

if [[ -n "${CFN_LINT:-}" ]]; then
  runner=("$CFN_LINT")
elif command -v cfn-lint >/dev/null 2>&1; then
  runner=(cfn-lint)
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import cfnlint' >/dev/null 2>&1; then
  runner=(python3 -c 'import sys; from cfnlint.runner import main; sys.exit(main())')
elif [[ -f "$cache_dir/cfnlint/__init__.py" ]]; then
  runner=(env "PYTHONPATH=$cache_dir" python3 -c 'import sys; from cfnlint.runner import main; sys.exit(main())')
else
  command -v python3 >/dev/null 2>&1 ||
    die "cfn-lint is not installed and there is no python3 to install it with; install cfn-lint $PINNED_VERSION (pip install cfn-lint==$PINNED_VERSION)"
  echo "cfn-lint.sh: cfn-lint not found; installing cfn-lint==$PINNED_VERSION into $cache_dir" >&2
  rm -rf "$cache_dir.tmp"
  if ! python3 -m pip install --disable-pip-version-check --quiet --retries 1 --timeout 20 \
      --target "$cache_dir.tmp" "cfn-lint==$PINNED_VERSION" >&2; then
    rm -rf "$cache_dir.tmp"
    die "cfn-lint is not installed and 'pip install cfn-lint==$PINNED_VERSION' failed (see above); install it by hand and rerun"
  fi
  rm -rf "$cache_dir" && mv "$cache_dir.tmp" "$cache_dir"
  runner=(env "PYTHONPATH=$cache_dir" python3 -c 'import sys; from cfnlint.runner import main; sys.exit(main())')
fi

version_line="$("${runner[@]}" --version 2>&1)" || die "cannot run cfn-lint (${runner[*]}): $version_line"
version="$(grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' <<<"$version_line" | head -n1 || true)"
[[ -n "$version" ]] || die "cannot read the version of cfn-lint from: $version_line"
if [[ "$(printf '%s\n%s\n' "$MIN_VERSION" "$version" | sort -V | head -n1)" != "$MIN_VERSION" ]]; then
  die "cfn-lint $version is older than $MIN_VERSION; upgrade it (pip install cfn-lint==$PINNED_VERSION)"
fi

status=0
PYTHONDONTWRITEBYTECODE=1 "${runner[@]}" --include-checks I --non-zero-exit-code informational \
  --append-rules "$rules_dir" -- "${templates[@]}" || status=$?
if [[ $status -ne 0 ]]; then
  echo "cfn-lint $version: findings in ${templates[*]} (exit $status); each one fails the check" >&2
  exit 1
fi
echo "cfn-lint $version + infra/check/rules: ${templates[*]}: no findings"
