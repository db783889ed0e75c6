#!/usr/bin/env bash
# Create (or bring up to date) the two IAM roles an EMR cluster for fruits-pipeline needs.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/create_roles.sh --bucket BUCKET [options]

Creates, or updates in place when they exist (safe to run again):
  - the EMR service role (trusts elasticmapreduce.amazonaws.com) with the AWS managed policy
    AmazonEMRServicePolicy_v2, plus an inline policy that lets it pass the instance role to
    EC2 (the managed policy only allows passing a role named EMR_EC2_DefaultRole);
  - the EC2 instance role (trusts ec2.amazonaws.com) with the inline least-privilege policy
    conf/iam-instance-role-policy.json for the given buckets, and the instance profile of the
    same name (EMR requires the profile and the role to share their name).
AmazonEMRServicePolicy_v2 only acts on resources tagged for-use-with-amazon-emr-managed-policies
=true: create_cluster.sh tags the cluster; tag the subnet (and any security group of your own).

Options:
  --bucket BUCKET          data bucket: fruits-360/, weights/, runs/ (required)
  --code-bucket BUCKET     bucket for code/ and logs/ (default: --bucket)
  --glue-database NAME     Glue database of --table glue:NAME.TABLE collections (default: fruits)
  --service-role NAME      EMR service role (default: fruits-pipeline-emr-service)
  --instance-role NAME     EC2 instance role and profile (default: fruits-pipeline-emr-ec2)
  --region REGION          region the cluster will run in (default: $AWS_REGION, else eu-west-1)
  --allowed-regions LIST   comma-separated EU regions (default: eu-west-1)
  --dry-run                print the IAM commands and policies, change nothing
  --help                   this help

Prints the instance profile name on stdout. Honours AWS_PROFILE, AWS_REGION and
AWS_ENDPOINT_URL. Never prompts.
Exit codes: 0 roles ready, 1 AWS error, 2 bad arguments, 5 residency refused.
USAGE
}

log() { echo "[create_roles] $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PYTHON=${PYTHON:-python3}
BUCKET="" CODE_BUCKET="" DRY_RUN=0 ALLOWED_REGIONS=eu-west-1 GLUE_DATABASE=fruits
SERVICE_ROLE=fruits-pipeline-emr-service INSTANCE_ROLE=fruits-pipeline-emr-ec2
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}
SERVICE_POLICY_ARN=arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2
# Inline policy names: put-role-policy replaces a policy of the same name, which is what makes
# a second run update rather than pile up.
PASS_POLICY=fruits-pipeline-pass-instance-role
S3_POLICY=fruits-pipeline-s3

while (($#)); do
  common_option "$@"
  if ((TAKEN)); then shift "$TAKEN" && continue; fi
  case "$1" in
    --bucket) BUCKET=${2:-}; shift 2 || die "--bucket needs a value" 2 ;;
    --code-bucket) CODE_BUCKET=${2:-}; shift 2 || die "--code-bucket needs a value" 2 ;;
    --glue-database) GLUE_DATABASE=${2:-}; shift 2 || die "--glue-database needs a value" 2 ;;
    --service-role) SERVICE_ROLE=${2:-}; shift 2 || die "--service-role needs a value" 2 ;;
    --instance-role) INSTANCE_ROLE=${2:-}; shift 2 || die "--instance-role needs a value" 2 ;;
    *) die "unknown option: $1 (see --help)" 2 ;;
  esac
done

[[ -n "$BUCKET" ]] || die "--bucket is required (see --help)" 2
CODE_BUCKET=${CODE_BUCKET:-$BUCKET}
[[ "$GLUE_DATABASE" =~ ^[a-z0-9_]{1,255}$ ]] || die "not a valid Glue database name: $GLUE_DATABASE" 2
for name in "$SERVICE_ROLE" "$INSTANCE_ROLE"; do
  [[ "$name" =~ ^[A-Za-z0-9+=,.@_-]{1,64}$ ]] || die "not a valid IAM role name: $name" 2
done
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION

# The policy names these buckets: they must be where the data may live before anything exists.
check_residency "$ALLOWED_REGIONS" "$REGION" "s3://$BUCKET/" "s3://$CODE_BUCKET/"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
render_template "$ROOT/conf/iam-instance-role-policy.json" \
  "DATA_BUCKET=$BUCKET" "CODE_BUCKET=$CODE_BUCKET" "GLUE_REGION=$REGION" \
  "GLUE_DATABASE=$GLUE_DATABASE" >"$work/s3-policy.json"
render_template "$ROOT/conf/iam-service-role-pass-policy.json" \
  "INSTANCE_ROLE=$INSTANCE_ROLE" >"$work/pass-policy.json"

# exists COMMAND...: whether a read-only `aws iam get-...` finds the thing. Under --dry-run
# nothing is read either: the plan printed is that of a first run.
exists() {
  ((DRY_RUN)) && return 1
  aws_cli iam "$@" >/dev/null 2>&1
}

# ensure_role NAME TRUST_FILE: create the role, or reset its trust policy if it exists.
ensure_role() {
  if exists get-role --role-name "$1"; then
    log "role $1 exists: resetting its trust policy"
    apply_change iam update-assume-role-policy --role-name "$1" --policy-document "file://$2"
  else
    log "creating role $1"
    apply_change iam create-role --role-name "$1" --assume-role-policy-document "file://$2" \
      --description "fruits-pipeline EMR (scripts/create_roles.sh)"
  fi
}

if ((DRY_RUN)); then
  echo "dry-run: policy $S3_POLICY of $INSTANCE_ROLE:" && cat "$work/s3-policy.json"
  echo "dry-run: policy $PASS_POLICY of $SERVICE_ROLE:" && cat "$work/pass-policy.json"
fi

ensure_role "$SERVICE_ROLE" "$ROOT/conf/iam-trust-emr.json"
apply_change iam attach-role-policy --role-name "$SERVICE_ROLE" --policy-arn "$SERVICE_POLICY_ARN"
apply_change iam put-role-policy --role-name "$SERVICE_ROLE" --policy-name "$PASS_POLICY" \
  --policy-document "file://$work/pass-policy.json"

ensure_role "$INSTANCE_ROLE" "$ROOT/conf/iam-trust-ec2.json"
apply_change iam put-role-policy --role-name "$INSTANCE_ROLE" --policy-name "$S3_POLICY" \
  --policy-document "file://$work/s3-policy.json"

if ! exists get-instance-profile --instance-profile-name "$INSTANCE_ROLE"; then
  log "creating instance profile $INSTANCE_ROLE"
  apply_change iam create-instance-profile --instance-profile-name "$INSTANCE_ROLE"
fi
in_profile=""
((DRY_RUN)) || in_profile=$(aws_cli iam get-instance-profile --instance-profile-name "$INSTANCE_ROLE" \
  --query 'InstanceProfile.Roles[].RoleName' --output text)
if [[ " $in_profile " != *" $INSTANCE_ROLE "* ]]; then
  apply_change iam add-role-to-instance-profile --instance-profile-name "$INSTANCE_ROLE" \
    --role-name "$INSTANCE_ROLE"
fi
((DRY_RUN)) || log "ready: service role $SERVICE_ROLE, instance profile $INSTANCE_ROLE ($BUCKET, $CODE_BUCKET)"
echo "$INSTANCE_ROLE"
