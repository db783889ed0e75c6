#!/usr/bin/env bash
# Shared by submit_step.sh and create_cluster.sh (sourced, not run).

# die MESSAGE [CODE]: print "script.sh: MESSAGE" on stderr and exit CODE (default 1).
die() {
  echo "${0##*/}: $1" >&2
  exit "${2:-1}"
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
