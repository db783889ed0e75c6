#!/usr/bin/env bash
# Create an EMR 7.x cluster for fruits-pipeline in an EU region, with its bootstrap action.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/create_cluster.sh --bucket BUCKET [options]

Uploads bootstrap/bootstrap-emr.sh to s3://BUCKET/code/bootstrap/, then creates an EMR cluster
with Spark, that bootstrap action, conf/emr-configurations.json, an idle auto-termination
timeout and its logs in s3://BUCKET/logs/. Prints the cluster id.

Options:
  --bucket BUCKET          bucket for the bootstrap script and logs, in an allowed region (required)
  --name NAME              cluster name (default: fruits-pipeline)
  --release LABEL          EMR release, 7.x (default: emr-7.10.0)
  --instance-type TYPE     primary and core instance type (default: m5.xlarge)
  --core-count N           core nodes (default: 2)
  --spot                   core nodes on Spot (the primary stays On-Demand)
  --idle-timeout SECONDS   auto-terminate after this long idle (default: 3600)
  --weights-uri URI        have the bootstrap pre-stage this s3:// weights file on every node
  --service-role ROLE      EMR service role (default: EMR_DefaultRole)
  --instance-profile NAME  EC2 instance profile (default: EMR_EC2_DefaultRole)
  --subnet-id ID           subnet to launch in (default: the account's default)
  --region REGION          AWS region (default: $AWS_REGION, else eu-west-1)
  --allowed-regions LIST   comma-separated EU regions (default: eu-west-1)
  --dry-run                print the commands, create nothing
  --help                   this help

Honours AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL. Never prompts.
Exit codes: 0 created, 1 AWS error, 2 bad arguments, 5 residency refused.
USAGE
}


ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PYTHON=${PYTHON:-python3}
BUCKET="" NAME=fruits-pipeline RELEASE=emr-7.10.0 INSTANCE_TYPE=m5.xlarge CORE_COUNT=2 SPOT=0
IDLE_TIMEOUT=3600 WEIGHTS_URI="" SERVICE_ROLE=EMR_DefaultRole INSTANCE_PROFILE=EMR_EC2_DefaultRole
SUBNET_ID="" DRY_RUN=0 ALLOWED_REGIONS=eu-west-1
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}

while (($#)); do
  case "$1" in
    --bucket) BUCKET=${2:-}; shift 2 || die "--bucket needs a value" 2 ;;
    --name) NAME=${2:-}; shift 2 || die "--name needs a value" 2 ;;
    --release) RELEASE=${2:-}; shift 2 || die "--release needs a value" 2 ;;
    --instance-type) INSTANCE_TYPE=${2:-}; shift 2 || die "--instance-type needs a value" 2 ;;
    --core-count) CORE_COUNT=${2:-}; shift 2 || die "--core-count needs a value" 2 ;;
    --spot) SPOT=1; shift ;;
    --idle-timeout) IDLE_TIMEOUT=${2:-}; shift 2 || die "--idle-timeout needs a value" 2 ;;
    --weights-uri) WEIGHTS_URI=${2:-}; shift 2 || die "--weights-uri needs a value" 2 ;;
    --service-role) SERVICE_ROLE=${2:-}; shift 2 || die "--service-role needs a value" 2 ;;
    --instance-profile) INSTANCE_PROFILE=${2:-}; shift 2 || die "--instance-profile needs a value" 2 ;;
    --subnet-id) SUBNET_ID=${2:-}; shift 2 || die "--subnet-id needs a value" 2 ;;
    --region) REGION=${2:-}; shift 2 || die "--region needs a value" 2 ;;
    --allowed-regions) ALLOWED_REGIONS=${2:-}; shift 2 || die "--allowed-regions needs a value" 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --help | -h) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" 2 ;;
  esac
done

[[ -n "$BUCKET" ]] || die "--bucket is required (see --help)" 2
[[ "$RELEASE" =~ ^emr-7\.[0-9]+\.[0-9]+$ ]] || die "--release must be an EMR 7.x label such as emr-7.10.0" 2
[[ "$CORE_COUNT" =~ ^[0-9]+$ && "$IDLE_TIMEOUT" =~ ^[0-9]+$ ]] || die "--core-count and --idle-timeout take whole numbers" 2
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION

guard=("s3://$BUCKET/")
[[ -n "$WEIGHTS_URI" ]] && guard+=("$WEIGHTS_URI")
check_residency "$ALLOWED_REGIONS" "$REGION" "${guard[@]}"

bootstrap_uri="s3://$BUCKET/code/bootstrap/bootstrap-emr.sh"
bootstrap_args=()
[[ -n "$WEIGHTS_URI" ]] && bootstrap_args=(--weights-uri "$WEIGHTS_URI")
market=ON_DEMAND
((SPOT)) && market=SPOT

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" - "$INSTANCE_TYPE" "$CORE_COUNT" "$market" >"$work/instance-groups.json" <<'PY'
import json, sys
instance_type, core_count, market = sys.argv[1], int(sys.argv[2]), sys.argv[3]
groups = [{"Name": "Primary", "InstanceGroupType": "MASTER", "InstanceType": instance_type,
           "InstanceCount": 1}]
if core_count:
    core = {"Name": "Core", "InstanceGroupType": "CORE", "InstanceType": instance_type,
            "InstanceCount": core_count}
    if market == "SPOT":
        core["BidPrice"] = "OnDemandPrice"  # the CLI then asks for Spot, capped at On-Demand
    groups.append(core)
print(json.dumps(groups))
PY
"$PYTHON" - "$bootstrap_uri" "${bootstrap_args[@]}" >"$work/bootstrap-actions.json" <<'PY'
import json, sys
print(json.dumps([{"Name": "fruits-pipeline dependencies", "Path": sys.argv[1], "Args": sys.argv[2:]}]))
PY

ec2_attributes="InstanceProfile=$INSTANCE_PROFILE"
[[ -n "$SUBNET_ID" ]] && ec2_attributes+=",SubnetId=$SUBNET_ID"
create=(emr create-cluster
  --name "$NAME"
  --release-label "$RELEASE"
  --applications Name=Spark
  --instance-groups "file://$work/instance-groups.json"
  --bootstrap-actions "file://$work/bootstrap-actions.json"
  --configurations "file://$ROOT/conf/emr-configurations.json"
  --auto-termination-policy "IdleTimeout=$IDLE_TIMEOUT"
  --log-uri "s3://$BUCKET/logs/"
  --service-role "$SERVICE_ROLE"
  --ec2-attributes "$ec2_attributes"
  --region "$REGION"
  --query ClusterId --output text)

if ((DRY_RUN)); then
  print_command aws s3 cp "$ROOT/bootstrap/bootstrap-emr.sh" "$bootstrap_uri"
  print_command aws "${create[@]}"
  exit 0
fi
aws_cli s3 cp --only-show-errors "$ROOT/bootstrap/bootstrap-emr.sh" "$bootstrap_uri" || die "upload of the bootstrap failed" 1
cluster_id=$(aws_cli "${create[@]}") || die "aws emr create-cluster failed" 1
echo "$cluster_id"
echo "[create_cluster] created $cluster_id ($NAME, $RELEASE, 1 + $CORE_COUNT x $INSTANCE_TYPE $market) in $REGION" >&2
