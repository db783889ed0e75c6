#!/usr/bin/env bash
# Fetch the Hadoop S3A connector jars that let a local Spark read and write s3:// (tests, CI,
# laptops). Never used on EMR: EMR 7.10+ serves s3:// with its own built-in S3A.
set -euo pipefail

# Where the jars come from: Maven is not reachable from every machine we build on, but PyPI is,
# and the sdist of sagemaker_pyspark 1.4.5 ships exactly these two jars in deps/jars/.
SDIST_PACKAGE=sagemaker_pyspark==1.4.5
SDIST_NAME=sagemaker_pyspark-1.4.5.tar.gz
SDIST_SHA256=05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb
# name sha256: hadoop-aws must match the Hadoop line Spark 3.5 ships (3.3.x); the SDK bundle is
# the one hadoop-aws 3.3.1 was built against.
JARS="hadoop-aws-3.3.1.jar 6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e
aws-java-sdk-bundle-1.11.901.jar b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead"

usage() {
  cat <<'USAGE'
Usage: scripts/fetch_s3a_jars.sh [--dir DIR] [--dry-run] [--help]

Downloads the sdist of sagemaker_pyspark==1.4.5 from PyPI once (pip download), checks its
sha256, extracts hadoop-aws-3.3.1.jar and aws-java-sdk-bundle-1.11.901.jar, checks theirs, and
keeps them in DIR. Does nothing when DIR already holds both jars with the right sha256.
Prints DIR on stdout (progress goes to stderr).

Options:
  --dir DIR    where the jars go (default: $FRUITS_PIPELINE_S3A_JARS, else
               ${XDG_CACHE_HOME:-~/.cache}/fruits-pipeline/s3a-jars); never inside the repository
  --dry-run    say what would be downloaded, change nothing
  --help       this help

Environment: PYTHON (default python3) runs pip.
Exit codes: 0 jars ready, 1 download or checksum failure, 2 bad arguments.
USAGE
}

log() { echo "[fetch_s3a_jars] $*" >&2; }
die() {
  echo "${0##*/}: $1" >&2
  exit "${2:-1}"
}

DIR=${FRUITS_PIPELINE_S3A_JARS:-${XDG_CACHE_HOME:-$HOME/.cache}/fruits-pipeline/s3a-jars}
DRY_RUN=0
PYTHON=${PYTHON:-python3}
while (($#)); do
  case "$1" in
    --dir) DIR=${2:-}; shift 2 || die "--dir needs a value" 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --help | -h) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" 2 ;;
  esac
done
[[ -n "$DIR" ]] || die "--dir needs a value" 2

sha256() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1 # macOS
  fi
}

# jars_ready: true when every jar is in DIR with its pinned sha256.
jars_ready() {
  local name expected
  while read -r name expected; do
    [[ -f "$DIR/$name" && "$(sha256 "$DIR/$name")" == "$expected" ]] || return 1
  done <<<"$JARS"
}

if jars_ready; then
  log "already there: $DIR"
  echo "$DIR"
  exit 0
fi
if ((DRY_RUN)); then
  log "dry-run: would pip download $SDIST_PACKAGE (sha256 $SDIST_SHA256) and extract into $DIR:"
  while read -r name expected; do log "dry-run:   $name (sha256 $expected)"; done <<<"$JARS"
  echo "$DIR"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "downloading $SDIST_PACKAGE from PyPI (about 180 MB, once)"
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "$SDIST_PACKAGE" >&2 ||
  die "pip download $SDIST_PACKAGE failed" 1
[[ "$(sha256 "$work/$SDIST_NAME")" == "$SDIST_SHA256" ]] ||
  die "$SDIST_NAME does not have the pinned sha256 $SDIST_SHA256: refusing it" 1

members=()
while read -r name _; do members+=("sagemaker_pyspark-1.4.5/deps/jars/$name"); done <<<"$JARS"
tar -xzf "$work/$SDIST_NAME" -C "$work" ${members[@]+"${members[@]}"} || die "the jars are missing from $SDIST_NAME" 1
mkdir -p "$DIR"
while read -r name expected; do
  actual=$(sha256 "$work/sagemaker_pyspark-1.4.5/deps/jars/$name")
  [[ "$actual" == "$expected" ]] || die "$name has sha256 $actual, expected $expected" 1
  # Move into place last, so an interrupted fetch never leaves a jar that looks ready.
  mv "$work/sagemaker_pyspark-1.4.5/deps/jars/$name" "$DIR/$name.partial"
  mv "$DIR/$name.partial" "$DIR/$name"
done <<<"$JARS"
log "ready: $DIR"
echo "$DIR"
