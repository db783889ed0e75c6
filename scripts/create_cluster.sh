#!/usr/bin/env bash
# Create an EMR 7.10+ cluster for fruits-pipeline in an EU region, with its bootstrap action.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/create_cluster.sh --bucket BUCKET [options]

Uploads bootstrap/bootstrap-emr.sh and the pinned requirements/emr.txt to
s3://BUCKET/code/bootstrap/, then creates an EMR cluster with Spark, that bootstrap action,
conf/emr-configurations.json, an idle auto-termination timeout, the roles of
scripts/create_roles.sh, and its logs in s3://BUCKET/logs/ only (no copy in EMR's own log
bucket: conf/emr-monitoring-configuration.json). Prints the cluster id.

Core nodes are always On-Demand: in cluster mode the driver runs on one of them, and losing it
loses the step. Spot capacity goes to task nodes (--task-count N --spot), which only run
executors: a reclaimed task node costs retried tasks, not the run.

Options:
  --bucket BUCKET          bucket for the bootstrap, the lock and logs, in an allowed region
                           (required)
  --name NAME              cluster name (default: fruits-pipeline)
  --release LABEL          EMR release, 7.10 or later (default: emr-7.10.0)
  --instance-type TYPE     instance type of every node (default: m7i.xlarge: AVX-512 VNNI and
                           AMX for --precision int8, see docs/emr-runbook.md; the executor sizes
                           in conf/emr-configurations.json fit its 12 GiB of YARN memory: pick
                           a type at least that large)
  --core-count N           On-Demand core nodes (default: 2)
  --task-count N           task nodes (default: 0)
  --spot                   task nodes on Spot, capped at the On-Demand price (needs
                           --task-count)
  --idle-timeout SECONDS   auto-terminate after this long idle (default: 3600)
  --weights-uri URI        have the bootstrap pre-stage this s3:// weights file on every node
  --service-role ROLE      EMR service role (default: fruits-pipeline-emr-service)
  --instance-profile NAME  EC2 instance profile (default: fruits-pipeline-emr-ec2)
  --subnet-id ID           subnet to launch in, tagged for-use-with-amazon-emr-managed-policies
                           =true (default: the account's default subnet)
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
BUCKET="" NAME=fruits-pipeline RELEASE=emr-7.10.0 INSTANCE_TYPE=m7i.xlarge CORE_COUNT=2
TASK_COUNT=0 SPOT=0 IDLE_TIMEOUT=3600 WEIGHTS_URI="" SUBNET_ID="" DRY_RUN=0
SERVICE_ROLE=fruits-pipeline-emr-service INSTANCE_PROFILE=fruits-pipeline-emr-ec2
ALLOWED_REGIONS=eu-west-1
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}
# AmazonEMRServicePolicy_v2 acts only on resources carrying this tag; EMR propagates it from
# the cluster to the instances and volumes it creates.
MANAGED_POLICY_TAG=for-use-with-amazon-emr-managed-policies=true

while (($#)); do
  common_option "$@"
  if ((TAKEN)); then shift "$TAKEN" && continue; fi
  case "$1" in
    --bucket) BUCKET=${2:-}; shift 2 || die "--bucket needs a value" 2 ;;
    --name) NAME=${2:-}; shift 2 || die "--name needs a value" 2 ;;
    --release) RELEASE=${2:-}; shift 2 || die "--release needs a value" 2 ;;
    --instance-type) INSTANCE_TYPE=${2:-}; shift 2 || die "--instance-type needs a value" 2 ;;
    --core-count) CORE_COUNT=${2:-}; shift 2 || die "--core-count needs a value" 2 ;;
    --task-count) TASK_COUNT=${2:-}; shift 2 || die "--task-count needs a value" 2 ;;
    --spot) SPOT=1; shift ;;
    --idle-timeout) IDLE_TIMEOUT=${2:-}; shift 2 || die "--idle-timeout needs a value" 2 ;;
    --weights-uri) WEIGHTS_URI=${2:-}; shift 2 || die "--weights-uri needs a value" 2 ;;
    --service-role) SERVICE_ROLE=${2:-}; shift 2 || die "--service-role needs a value" 2 ;;
    --instance-profile) INSTANCE_PROFILE=${2:-}; shift 2 || die "--instance-profile needs a value" 2 ;;
    --subnet-id) SUBNET_ID=${2:-}; shift 2 || die "--subnet-id needs a value" 2 ;;
    *) die "unknown option: $1 (see --help)" 2 ;;
  esac
done

[[ -n "$BUCKET" ]] || die "--bucket is required (see --help)" 2
# From 7.10 EMR serves s3:// with S3A, which is what conf/emr-configurations.json configures.
[[ "$RELEASE" =~ ^emr-7\.([1-9][0-9]+)\.[0-9]+$ ]] || die "--release must be emr-7.10.0 or a later 7.x label" 2
[[ "$CORE_COUNT" =~ ^[1-9][0-9]*$ ]] || die "--core-count takes a whole number of at least 1 (the driver runs on a core node)" 2
[[ "$TASK_COUNT" =~ ^[0-9]+$ && "$IDLE_TIMEOUT" =~ ^[0-9]+$ ]] || die "--task-count and --idle-timeout take whole numbers" 2
((SPOT == 0 || TASK_COUNT > 0)) || die "--spot applies to task nodes: add --task-count N" 2
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION

if [[ -n "$WEIGHTS_URI" ]]; then
  check_residency "$ALLOWED_REGIONS" "$REGION" "s3://$BUCKET/" "$WEIGHTS_URI"
else
  check_residency "$ALLOWED_REGIONS" "$REGION" "s3://$BUCKET/"
fi

bootstrap_prefix="s3://$BUCKET/code/bootstrap"
bootstrap_uri="$bootstrap_prefix/bootstrap-emr.sh"
requirements_uri="$bootstrap_prefix/requirements-emr.txt"
market=ON_DEMAND
((SPOT)) && market=SPOT

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" - "$INSTANCE_TYPE" "$CORE_COUNT" "$TASK_COUNT" "$market" >"$work/instance-groups.json" <<'PY'
import json, sys
instance_type, core_count, task_count, task_market = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def group(name, role, count):
    return {"Name": name, "InstanceGroupType": role, "InstanceType": instance_type,
            "InstanceCount": count}
groups = [group("Primary", "MASTER", 1), group("Core", "CORE", core_count)]
if task_count:
    task = group("Task", "TASK", task_count)
    if task_market == "SPOT":
        task["BidPrice"] = "OnDemandPrice"  # the CLI then asks for Spot, capped at On-Demand
    groups.append(task)
print(json.dumps(groups))
PY
"$PYTHON" - "$bootstrap_uri" "$requirements_uri" "$WEIGHTS_URI" >"$work/bootstrap-actions.json" <<'PY'
import json, sys
script, requirements, weights = sys.argv[1:]
args = ["--requirements", requirements] + (["--weights-uri", weights] if weights else [])
print(json.dumps([{"Name": "fruits-pipeline dependencies", "Path": script, "Args": args}]))
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
  --monitoring-configuration "file://$ROOT/conf/emr-monitoring-configuration.json"
  --tags "$MANAGED_POLICY_TAG"
  --service-role "$SERVICE_ROLE"
  --ec2-attributes "$ec2_attributes"
  --region "$REGION"
  --query ClusterId --output text)

apply_change s3 cp --only-show-errors "$ROOT/bootstrap/bootstrap-emr.sh" "$bootstrap_uri"
apply_change s3 cp --only-show-errors "$ROOT/requirements/emr.txt" "$requirements_uri"
if ((DRY_RUN)); then
  echo "dry-run: instance groups: $(cat "$work/instance-groups.json")"
  echo "dry-run: bootstrap actions: $(cat "$work/bootstrap-actions.json")"
  print_command aws "${create[@]}"
  exit 0
fi
cluster_id=$(aws_cli "${create[@]}") || die "aws emr create-cluster failed" 1
echo "$cluster_id"
echo "[create_cluster] created $cluster_id ($NAME, $RELEASE, 1 + $CORE_COUNT x $INSTANCE_TYPE on-demand + $TASK_COUNT x $market task) in $REGION" >&2
