#!/usr/bin/env bash
# EMR bootstrap action: install fruits-pipeline's Python dependencies on every node.
#
# Installs for /usr/bin/python3.11 exactly the tested set of packages: requirements/emr.txt,
# the lock generated from the tested environment (every package the job imports, keras and
# h5py included, and their own dependencies; not pyspark: EMR provides its own Spark), with
# pip --no-deps so nothing is resolved anew on the node. On Amazon Linux 2023 python3.11 may be
# there without pip (a separate package, python3.11-pip): installed with dnf when missing.
# Idempotent (pip skips what is already at its pinned version). Retries transient failures.
set -euo pipefail

PYTHON=/usr/bin/python3.11
ATTEMPTS=4
REQUIREMENTS=""
WEIGHTS_URI=""
WEIGHTS_DEST=/mnt/fruits-pipeline/weights
DRY_RUN=0
# What the job imports (the driver: TensorFlow, Keras, h5py to check and convert the weights, NNCF
# for --precision int8; every worker: OpenVINO, or OpenCV for --extractor orb): the check that
# the install is usable, not only present.
IMPORTS="tensorflow, keras, h5py, openvino, nncf, rich, cv2, PIL, numpy, pandas, pyarrow, boto3"

usage() {
  cat <<USAGE
Usage: bootstrap-emr.sh --requirements URI [--python PATH] [--weights-uri s3://BUCKET/KEY]
                        [--weights-dest DIR] [--dry-run]

Installs on this node, for PYTHON (default $PYTHON), the pinned requirements file (s3:// URI
or local path; create_cluster.sh uploads requirements/emr.txt next to this script).
Options:
  --requirements URI   the lock file to install, exactly (required)
  --python PATH        interpreter to install for (default: $PYTHON)
  --weights-uri URI    also copy this weights file from S3 to --weights-dest (optional)
  --weights-dest DIR   where to put it (default: $WEIGHTS_DEST)
  --dry-run            print what would be installed and copied, change nothing
  --help               this help
Exit codes: 0 installed (or already there), 1 an install, copy or import check failed,
2 bad arguments.
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

# change COMMAND...: run a command that changes the node (retried), or print it under --dry-run.
change() {
  if ((DRY_RUN)); then
    printf 'dry-run:'
    printf ' %q' "$@"
    printf '\n'
  else
    retry "$@"
  fi
}

while (($#)); do
  case "$1" in
    --python) PYTHON=${2:?--python needs a path}; shift 2 ;;
    --requirements) REQUIREMENTS=${2:?--requirements needs an s3:// URI or a path}; shift 2 ;;
    --weights-uri) WEIGHTS_URI=${2:?--weights-uri needs an s3:// URI}; shift 2 ;;
    --weights-dest) WEIGHTS_DEST=${2:?--weights-dest needs a folder}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --help | -h) usage; exit 0 ;;
    *) echo "bootstrap-emr.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$REQUIREMENTS" ]] || { echo "bootstrap-emr.sh: --requirements is required" >&2; exit 2; }

# The interpreter, then its pip: each comes from its own dnf package on Amazon Linux 2023.
if [[ ! -x "$PYTHON" ]]; then
  log "$PYTHON not found: installing python3.11 and python3.11-pip with dnf"
  change sudo dnf install -y -q python3.11 python3.11-pip
elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  log "$PYTHON has no pip: installing python3.11-pip with dnf"
  change sudo dnf install -y -q python3.11-pip
fi

lock=$REQUIREMENTS
if [[ "$REQUIREMENTS" == s3://* ]]; then
  lock=$(mktemp)
  trap 'rm -f "$lock"' EXIT
  change aws s3 cp --only-show-errors "$REQUIREMENTS" "$lock"
fi
log "installing the pinned requirements $REQUIREMENTS"
change sudo "$PYTHON" -m pip install --quiet --no-cache-dir --no-deps --requirement "$lock"

if [[ -n "$WEIGHTS_URI" ]]; then
  log "staging weights $WEIGHTS_URI -> $WEIGHTS_DEST/"
  change sudo mkdir -p "$WEIGHTS_DEST"
  change sudo aws s3 cp --only-show-errors "$WEIGHTS_URI" "$WEIGHTS_DEST/"
fi

if ((DRY_RUN)); then
  log "dry run: nothing installed"
  exit 0
fi
"$PYTHON" -c "import $IMPORTS" || {
  log "import check failed for $PYTHON"
  exit 1
}
log "done: fruits-pipeline dependencies ready for $PYTHON"
