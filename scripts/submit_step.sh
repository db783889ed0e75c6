#!/usr/bin/env bash
# Package fruits-pipeline, upload it to S3 and submit it as a Spark step to an EMR cluster.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/submit_step.sh --cluster-id ID --bucket BUCKET [options] -- COMMAND JOB_ARGS...

Zips src/fruits_pipeline for --py-files, uploads the zip and the entrypoint to
s3://BUCKET/code/VERSION/, then adds a Spark step (spark-submit --deploy-mode cluster,
ActionOnFailure=CONTINUE) that runs the job's COMMAND with JOB_ARGS, e.g.
-- run --input s3://... --output s3://... (or -- project --model s3://... ...).
Every bucket (BUCKET and any s3:// URI in JOB_ARGS) and the region must be in an allowed EU
region, checked before anything is uploaded.

Options:
  --cluster-id ID        EMR cluster (j-...)                                  (required)
  --bucket BUCKET        bucket for the code, in an allowed region            (required)
  --version VERSION      code folder name (default: package version + git commit)
  --region REGION        AWS region (default: $AWS_REGION, else eu-west-1)
  --allowed-regions LIST comma-separated EU regions (default: eu-west-1)
  --name NAME            step name (default: fruits-pipeline VERSION)
  --wait                 poll until the step ends; exit 0 only if it COMPLETED (10, 11 below)
  --poll-seconds N       seconds between polls with --wait (default: 30)
  --timeout-seconds N    give up waiting after N seconds (default: 21600)
  --dry-run              print the commands, upload and submit nothing
  --help                 this help

Honours AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL. Never prompts.
Exit codes (distinct from the job's own 3, 4, 6 and 7, which end up in the step's logs):
  0   submitted (with --wait: the step COMPLETED)
  1   AWS or packaging error
  2   bad arguments
  5   residency refused (a bucket or the region outside the allowed EU regions)
  10  with --wait: the step FAILED, was CANCELLED or INTERRUPTED (its logs are printed)
  11  with --wait: still running after --timeout-seconds (the step goes on; not cancelled)
USAGE
}

log() { echo "[submit_step] $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PYTHON=${PYTHON:-python3}
CLUSTER_ID="" BUCKET="" VERSION="" NAME="" WAIT=0 DRY_RUN=0
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}
ALLOWED_REGIONS=eu-west-1
POLL_SECONDS=30
TIMEOUT_SECONDS=21600
JOB_ARGS=()

while (($#)); do
  common_option "$@"
  if ((TAKEN)); then shift "$TAKEN" && continue; fi
  case "$1" in
    --cluster-id) CLUSTER_ID=${2:-}; shift 2 || die "--cluster-id needs a value" 2 ;;
    --bucket) BUCKET=${2:-}; shift 2 || die "--bucket needs a value" 2 ;;
    --version) VERSION=${2:-}; shift 2 || die "--version needs a value" 2 ;;
    --name) NAME=${2:-}; shift 2 || die "--name needs a value" 2 ;;
    --wait) WAIT=1; shift ;;
    --poll-seconds) POLL_SECONDS=${2:-}; shift 2 || die "--poll-seconds needs a value" 2 ;;
    --timeout-seconds) TIMEOUT_SECONDS=${2:-}; shift 2 || die "--timeout-seconds needs a value" 2 ;;
    --) shift; JOB_ARGS=("$@"); break ;;
    *) die "unknown option: $1 (job arguments go after --)" 2 ;;
  esac
done

[[ -n "$CLUSTER_ID" ]] || die "--cluster-id is required (see --help)" 2
[[ -n "$BUCKET" ]] || die "--bucket is required (see --help)" 2
((${#JOB_ARGS[@]})) || die "no job arguments: pass them after --, e.g. -- run --input s3://... --output s3://..." 2
[[ "$POLL_SECONDS" =~ ^[0-9]+$ && "$TIMEOUT_SECONDS" =~ ^[0-9]+$ ]] || die "--poll-seconds and --timeout-seconds take whole seconds" 2
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION

if [[ -z "$VERSION" ]]; then
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
  VERSION="$(PYTHONPATH="$ROOT/src" "$PYTHON" -c 'import fruits_pipeline as f; print(f.__version__)')-$commit"
fi
NAME=${NAME:-"fruits-pipeline $VERSION"}
CODE_PREFIX="s3://$BUCKET/code/$VERSION"

# The residency guard: the same code the job runs, before anything leaves this machine.
s3_uris=("s3://$BUCKET/")
for arg in "${JOB_ARGS[@]}"; do
  [[ "$arg" == s3://* || "$arg" == s3a://* ]] && s3_uris+=("$arg")
done
check_residency "$ALLOWED_REGIONS" "$REGION" "${s3_uris[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The package and the step (exactly the spark-submit line, as JSON so spaces survive) come from
# fruits_pipeline.step, the one place that shapes them; the end-to-end test runs that same step.
PYTHONPATH="$ROOT/src" "$PYTHON" -m fruits_pipeline.step --code-prefix "$CODE_PREFIX" \
  --name "$NAME" --out "$work" -- "${JOB_ARGS[@]}" || die "packaging the code failed" 1
zip_path="$work/fruits_pipeline.zip"
steps_file="$work/steps.json"

run() {
  if ((DRY_RUN)); then
    print_command aws "$@"
  else
    aws_cli "$@"
  fi
}

log "uploading code to $CODE_PREFIX/"
run s3 cp --only-show-errors "$zip_path" "$CODE_PREFIX/fruits_pipeline.zip"
run s3 cp --only-show-errors "$work/main.py" "$CODE_PREFIX/main.py"
if ((DRY_RUN)); then
  echo "dry-run: steps file:" && cat "$steps_file"
  run emr add-steps --cluster-id "$CLUSTER_ID" --steps "file://$steps_file"
  exit 0
fi
step_id=$(aws_cli emr add-steps --cluster-id "$CLUSTER_ID" --steps "file://$steps_file" \
  --query 'StepIds[0]' --output text) || die "aws emr add-steps failed" 1
echo "$step_id"
log "submitted step $step_id to $CLUSTER_ID ($NAME)"
((WAIT)) || exit 0

log_uri=$(aws_cli emr describe-cluster --cluster-id "$CLUSTER_ID" --query 'Cluster.LogUri' --output text || true)
waited=0
while :; do
  state=$(aws_cli emr describe-step --cluster-id "$CLUSTER_ID" --step-id "$step_id" \
    --query 'Step.Status.State' --output text) || die "aws emr describe-step failed" 1
  log "step $step_id: $state"
  case "$state" in
    COMPLETED) exit 0 ;;
    FAILED | CANCELLED | INTERRUPTED)
      if [[ -n "$log_uri" && "$log_uri" != "None" ]]; then
        log "logs: ${log_uri%/}/$CLUSTER_ID/steps/$step_id/ (stderr.gz, controller.gz) and containers/"
      fi
      exit 10 ;;
  esac
  if ((waited >= TIMEOUT_SECONDS)); then
    log "gave up waiting after $waited s; the step is still $state and goes on"
    exit 11
  fi
  sleep "$POLL_SECONDS"
  waited=$((waited + POLL_SECONDS))
done
