#!/usr/bin/env bash
# Fetch the jars a local Spark needs beyond PySpark's own (tests, CI, laptops): Hadoop's S3A
# connector for s3://, and Apache Iceberg's Spark runtime (+ its AWS bundle, for the Glue
# catalog) for --table. Never used on EMR: EMR 7.10+ serves s3:// with its own S3A and brings
# Iceberg with the iceberg-defaults classification.
set -euo pipefail

# groupId:artifactId:version sha256. hadoop-aws must be the Hadoop of PySpark 3.5's own jars
# (hadoop-client-api-3.3.4), with the AWS SDK bundle hadoop-aws 3.3.4 was built against.
# Iceberg 1.10.x is what EMR 7.12-7.14 ship.
ARTIFACTS="org.apache.hadoop:hadoop-aws:3.3.4 53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a
com.amazonaws:aws-java-sdk-bundle:1.12.262 873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5
org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.1 39ea09e6c03550a300b9d9ab498949836d2d434e441da4c12a943a086e396940
org.apache.iceberg:iceberg-aws-bundle:1.10.1 86bf20892ea5b4c17688f19b075399885f6aa5303f6b2dc9f491e76ceef9633b"
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

usage() {
  cat <<'USAGE'
Usage: scripts/fetch_jars.sh [--dir DIR] [--dry-run] [--help]

Copies these jars from Maven Central with `mvn dependency:copy` (no transitive dependencies),
checks each one's sha256 and keeps them in DIR:
  hadoop-aws-3.3.4.jar, aws-java-sdk-bundle-1.12.262.jar           (s3:// off EMR)
  iceberg-spark-runtime-3.5_2.12-1.10.1.jar, iceberg-aws-bundle-1.10.1.jar  (--table)
Fetches only the jars DIR lacks (or holds with another sha256). Prints DIR on stdout (progress
goes to stderr).

Options:
  --dir DIR    where the jars go (default: $FRUITS_PIPELINE_JARS, else
               ${XDG_CACHE_HOME:-~/.cache}/fruits-pipeline/jars); never inside the repository
  --dry-run    say what would be fetched, change nothing
  --help       this help

Environment: MVN (default mvn) runs Maven; its local repository (~/.m2) caches the downloads.
Exit codes: 0 jars ready, 1 download or checksum failure, 2 bad arguments.
USAGE
}

log() { echo "[fetch_jars] $*" >&2; }
die() {
  echo "${0##*/}: $1" >&2
  exit "${2:-1}"
}

DIR=${FRUITS_PIPELINE_JARS:-${XDG_CACHE_HOME:-$HOME/.cache}/fruits-pipeline/jars}
DRY_RUN=0
MVN=${MVN:-mvn}
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

# jar_name COORDINATES: the file name Maven gives groupId:artifactId:version.
jar_name() {
  local artifact version
  artifact=$(echo "$1" | cut -d: -f2)
  version=$(echo "$1" | cut -d: -f3)
  echo "$artifact-$version.jar"
}

# missing: the coordinates and sha256 of every jar not in DIR with its pinned sha256.
missing() {
  local coordinates expected name
  while read -r coordinates expected; do
    name=$(jar_name "$coordinates")
    if [[ ! -f "$DIR/$name" || "$(sha256 "$DIR/$name")" != "$expected" ]]; then
      echo "$coordinates $expected"
    fi
  done <<<"$ARTIFACTS"
}

todo=$(missing)
if [[ -z "$todo" ]]; then
  log "already there: $DIR"
  echo "$DIR"
  exit 0
fi
if ((DRY_RUN)); then
  while read -r coordinates expected; do
    log "dry-run: would mvn dependency:copy $coordinates (sha256 $expected) into $DIR"
  done <<<"$todo"
  echo "$DIR"
  exit 0
fi
command -v "$MVN" >/dev/null || die "Maven ($MVN) is not installed: apt-get install maven, or brew install maven" 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIR"
while read -r coordinates expected; do
  name=$(jar_name "$coordinates")
  log "fetching $coordinates from Maven Central"
  # Maven's output (colour resets even with --quiet) is shown only when it fails.
  if ! "$MVN" --batch-mode --quiet -Dstyle.color=never "$DEPENDENCY_PLUGIN:copy" \
    -Dartifact="$coordinates" -DoutputDirectory="$work" >"$work/mvn.log" 2>&1; then
    cat "$work/mvn.log" >&2
    die "mvn dependency:copy $coordinates failed" 1
  fi
  actual=$(sha256 "$work/$name")
  [[ "$actual" == "$expected" ]] || die "$name has sha256 $actual, expected $expected: refusing it" 1
  # Move into place last, so an interrupted fetch never leaves a jar that looks ready.
  mv "$work/$name" "$DIR/$name.partial"
  mv "$DIR/$name.partial" "$DIR/$name"
done <<<"$todo"
log "ready: $DIR"
echo "$DIR"
