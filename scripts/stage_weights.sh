#!/usr/bin/env bash
# Stage MobileNetV2's weights in S3 once, checked by sha256, so no cluster node needs internet.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/stage_weights.sh --bucket BUCKET [options]

Puts a weights file at s3://BUCKET/weights/FILE with its sha256 in the object's metadata, and
prints "s3://BUCKET/weights/FILE SHA256" on stdout. Give the job both:
  --weights s3://BUCKET/weights/FILE --weights-sha256 SHA256
Run it again and it checks instead: an object already there with the same sha256 is left
alone; one with another sha256 is refused, never replaced.

The official file (--source imagenet) is downloaded from Keras' bucket on this machine, which
needs internet; the cluster then never does. Keras publishes no checksum for it: pass the one
you trust with --sha256 and a file that differs is refused before anything is uploaded.

Options:
  --bucket BUCKET          bucket for weights/, in an allowed region (required)
  --source imagenet|FILE   the official Keras ImageNet file (default), or a local .h5 file
  --sha256 HEX             expected sha256 of the file; refused if it differs
  --key KEY                object key (default: weights/ + the file's name)
  --region REGION          AWS region (default: $AWS_REGION, else eu-west-1)
  --allowed-regions LIST   comma-separated EU regions (default: eu-west-1)
  --dry-run                print what would be downloaded and uploaded, change nothing
  --help                   this help

Honours AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL. Never prompts.
Exit codes: 0 staged (or already there), 1 AWS or download error, 2 bad arguments,
3 sha256 mismatch (the file, or the object already in S3), 5 residency refused.
USAGE
}

log() { echo "[stage_weights] $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PYTHON=${PYTHON:-python3}
BUCKET="" SOURCE=imagenet EXPECTED="" KEY="" DRY_RUN=0 ALLOWED_REGIONS=eu-west-1
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}
# The file Keras downloads for MobileNetV2(alpha=1.0, include_top=False) with weights="imagenet"
# (keras/src/applications/mobilenet_v2.py), the same one fruits_pipeline.model names.
IMAGENET_FILE=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
IMAGENET_URL=https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/$IMAGENET_FILE

while (($#)); do
  common_option "$@"
  if ((TAKEN)); then shift "$TAKEN" && continue; fi
  case "$1" in
    --bucket) BUCKET=${2:-}; shift 2 || die "--bucket needs a value" 2 ;;
    --source) SOURCE=${2:-}; shift 2 || die "--source needs a value" 2 ;;
    --sha256) EXPECTED=${2:-}; shift 2 || die "--sha256 needs a value" 2 ;;
    --key) KEY=${2:-}; shift 2 || die "--key needs a value" 2 ;;
    *) die "unknown option: $1 (see --help)" 2 ;;
  esac
done

[[ -n "$BUCKET" ]] || die "--bucket is required (see --help)" 2
EXPECTED=$(printf '%s' "$EXPECTED" | tr 'A-F' 'a-f')
[[ -z "$EXPECTED" || "$EXPECTED" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 takes 64 hexadecimal digits" 2
if [[ "$SOURCE" == imagenet ]]; then
  name=$IMAGENET_FILE
else
  [[ -f "$SOURCE" ]] || die "no such weights file: $SOURCE" 2
  name=${SOURCE##*/}
fi
KEY=${KEY:-weights/$name}
uri="s3://$BUCKET/$KEY"
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION
check_residency "$ALLOWED_REGIONS" "$REGION" "$uri"

if ((DRY_RUN)); then
  [[ "$SOURCE" == imagenet ]] && print_command curl --fail --silent --show-error --location --output "$name" "$IMAGENET_URL"
  echo "dry-run: check the file's sha256${EXPECTED:+ against $EXPECTED}, then (unless $uri already holds it):"
  print_command aws s3 cp --only-show-errors "$name" "$uri" --metadata "sha256=${EXPECTED:-SHA256}"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file=$SOURCE
if [[ "$SOURCE" == imagenet ]]; then
  file="$work/$name"
  log "downloading $IMAGENET_URL"
  curl --fail --silent --show-error --location --output "$file" "$IMAGENET_URL" || die "download of $IMAGENET_URL failed" 1
fi
actual=$("$PYTHON" - "$file" <<'PY'
import hashlib, sys
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as handle:
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
print(digest.hexdigest())
PY
)
if [[ -n "$EXPECTED" && "$actual" != "$EXPECTED" ]]; then
  die "sha256 of $SOURCE is $actual, not the expected $EXPECTED: refusing to stage it" 3
fi

# What is there already: its sha256 metadata, "missing", or an error that stops the script.
status=0
staged=$(aws_cli s3api head-object --bucket "$BUCKET" --key "$KEY" --query 'Metadata.sha256' \
  --output text 2>"$work/head.err") || status=$?
if ((status == 0)); then
  [[ "$staged" == "$actual" ]] || die "$uri already holds other weights (sha256 $staged, this file $actual): not replacing it; pick another --key" 3
  log "$uri already holds this file (sha256 $actual)"
elif grep -q '(404)' "$work/head.err"; then
  apply_change s3 cp --only-show-errors "$file" "$uri" --metadata "sha256=$actual"
  log "staged $uri (sha256 $actual)"
else
  cat "$work/head.err" >&2
  die "cannot read $uri" 1
fi
echo "$uri $actual"
