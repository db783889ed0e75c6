#!/usr/bin/env bash
# EMR bootstrap action: install fruits-pipeline's Python dependencies on every node.
#
# Installs for /usr/bin/python3.11 the exact versions pinned in pyproject.toml (pyspark is not
# installed: EMR provides its own Spark). Idempotent: a package already at its pinned version is
# left alone. Retries transient pip failures. Exits non-zero if anything could not be installed.
set -euo pipefail

# Keep in step with pyproject.toml's [project] dependencies (tests/test_emr_files.py checks).
PINNED=(
  "tensorflow-cpu==2.21.0"
  "ml-dtypes==0.5.4"
  "pillow==13.0.0"
  "numpy==1.26.4"
  "pandas==2.2.3"
  "pyarrow==17.0.0"
  "boto3==1.44.5"
)
PYTHON=/usr/bin/python3.11
ATTEMPTS=4
WEIGHTS_URI=""
WEIGHTS_DEST=/mnt/fruits-pipeline/weights

usage() {
  cat <<USAGE
Usage: bootstrap-emr.sh [--python PATH] [--weights-uri s3://BUCKET/KEY] [--weights-dest DIR]

Installs on this node, for PYTHON (default $PYTHON), the pinned dependencies of fruits-pipeline:
  ${PINNED[*]}
Options:
  --python PATH        interpreter to install for (default: $PYTHON)
  --weights-uri URI    also copy this weights file from S3 to --weights-dest (optional)
  --weights-dest DIR   where to put it (default: $WEIGHTS_DEST)
  --help               this help
Exit codes: 0 installed (or already there), 1 an install or copy failed, 2 bad arguments.
USAGE
}

log() { printf '[bootstrap-emr %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

retry() {
  local attempt=1
  until "$@"; do
    if ((attempt >= ATTEMPTS)); then
      log "giving up after $attempt attempts: $*"
      return 1
    fi
    log "attempt $attempt failed, retrying in $((attempt * 10)) s: $*"
    sleep $((attempt * 10))
    attempt=$((attempt + 1))
  done
}

while (($#)); do
  case "$1" in
    --python) PYTHON=${2:?--python needs a path}; shift 2 ;;
    --weights-uri) WEIGHTS_URI=${2:?--weights-uri needs an s3:// URI}; shift 2 ;;
    --weights-dest) WEIGHTS_DEST=${2:?--weights-dest needs a folder}; shift 2 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "bootstrap-emr.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ ! -x "$PYTHON" ]]; then
  log "$PYTHON not found: installing python3.11 with dnf"
  retry sudo dnf install -y -q python3.11 python3.11-pip
fi

missing=()
for pin in "${PINNED[@]}"; do
  name=${pin%%==*}
  version=${pin##*==}
  installed=$("$PYTHON" -m pip show "$name" 2>/dev/null | awk '/^Version:/ {print $2}' || true)
  if [[ "$installed" == "$version" ]]; then
    log "already installed: $pin"
  else
    missing+=("$pin")
  fi
done

if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  retry sudo "$PYTHON" -m pip install --quiet --no-cache-dir "${missing[@]}"
fi

if [[ -n "$WEIGHTS_URI" ]]; then
  log "staging weights $WEIGHTS_URI -> $WEIGHTS_DEST/"
  sudo mkdir -p "$WEIGHTS_DEST"
  retry sudo aws s3 cp --only-show-errors "$WEIGHTS_URI" "$WEIGHTS_DEST/"
fi

"$PYTHON" -c "import tensorflow, PIL, numpy, pandas, pyarrow, boto3" || {
  log "import check failed for $PYTHON"
  exit 1
}
log "done: fruits-pipeline dependencies ready for $PYTHON"
