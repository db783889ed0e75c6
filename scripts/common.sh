#!/usr/bin/env bash
# Shared by the scripts in this folder (sourced, not run). Bash 3.2 safe (macOS): no
# associative arrays or case-changing expansions, and never a bare expansion of an array that
# may be empty (tests/test_emr_files.py checks all scripts for both).

# die MESSAGE [CODE]: print "script.sh: MESSAGE" on stderr and exit CODE (default 1).
die() {
  echo "${0##*/}: $1" >&2
  exit "${2:-1}"
}

# common_option ARGS...: take an option every script has (--region, --allowed-regions,
# --dry-run, --help) into REGION, ALLOWED_REGIONS, DRY_RUN; sets TAKEN to the number of words
# used, 0 when "$1" is not one of them (the caller's own case handles it).
# shellcheck disable=SC2034 # the variables are the sourcing script's
common_option() {
  TAKEN=2
  case "$1" in
    --region) REGION=${2:-} ;;
    --allowed-regions) ALLOWED_REGIONS=${2:-} ;;
    --dry-run) DRY_RUN=1; TAKEN=1 ;;
    --help | -h) usage; exit 0 ;;
    *) TAKEN=0 ;;
  esac
  ((TAKEN < 2 || $# >= 2)) || die "$1 needs a value" 2
}

# The AWS CLI. AWS CLI v1's `emr` commands ignore AWS_ENDPOINT_URL, so pass it explicitly.
aws_cli() {
  if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
    aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"
  else
    aws "$@"
  fi
}

# Print a command the way a shell would read it back, prefixed with "dry-run:".
print_command() {
  printf 'dry-run:'
  printf ' %q' "$@"
  printf '\n'
}

# apply_change COMMAND...: run an AWS CLI command that changes something, its output discarded
# (the CLI's errors still reach stderr); exit 1 if it fails. Under --dry-run (DRY_RUN=1) only
# print it.
apply_change() {
  if ((${DRY_RUN:-0})); then
    print_command aws "$@"
  else
    aws_cli "$@" >/dev/null || die "aws $1 $2 failed" 1
  fi
}

# check_residency ALLOWED_REGIONS REGION URI...: the job's own residency guard, run before
# anything is uploaded or created. Exits 5 when refused, 1 when the check cannot run.
check_residency() {
  local allowed=$1 region=$2 status=0
  shift 2
  PYTHONPATH="$ROOT/src" "$PYTHON" -m fruits_pipeline.residency \
    --allowed-regions "$allowed" --region "$region" "$@" >&2 || status=$?
  if ((status == 5)); then
    exit 5
  elif ((status != 0)); then
    echo "the residency check could not run (exit $status)" >&2
    exit 1
  fi
}

# render_template TEMPLATE NAME=VALUE...: print TEMPLATE (a conf/ JSON file) with each NAME
# replaced by VALUE, after checking it is still valid JSON and that no placeholder is left.
# A list that now names a thing twice (one bucket for data and code) names it once.
render_template() {
  "$PYTHON" - "$@" <<'PY'
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
for pair in sys.argv[2:]:
    name, value = pair.split("=", 1)
    text = text.replace(name, value)
left = sorted(set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z][A-Z0-9_]*\b", text)))
if left:
    sys.exit(f"{sys.argv[1]}: placeholders left unreplaced: {', '.join(left)}")
def once(node):
    if isinstance(node, dict):
        return {key: once(value) for key, value in node.items()}
    if isinstance(node, list):
        items = [once(item) for item in node]
        return list(dict.fromkeys(items)) if all(isinstance(i, str) for i in items) else items
    return node
print(json.dumps(once(json.loads(text))))
PY
}
