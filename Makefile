# The two set-up commands of the README:
#   make sample   install the job into .venv and run it on sample/fruits-360 with local[*]
#   make test     install the job and its test tools, then run every test (CI runs this)
# Tests by cost (markers in tests/, see tests/conftest.py): make test-unit, test-spark, test-e2e;
#   make test-quick   the inner loop: unit and spark tiers, no model, no whole run
# make docs writes docs/performance.md from benchmarks/results/ (make lint checks it is current).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= models/mobilenet_v2_1.0_224_no_top_imagenet_from_tflite.weights.h5
SAMPLE_INPUT ?= sample/fruits-360
SAMPLE_OUTPUT ?= runs/sample
PYTEST_ARGS ?=

.PHONY: sample test test-quick test-unit test-spark test-e2e test-tools lint docs jars install lock clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# The tested environment is requirements/lock.txt, installed exactly (no resolution, so a clean
# clone tests the same versions whatever was released since); `make lock` re-resolves it.
# Re-installs only when the lock or pyproject.toml changes.
$(VENV)/.installed: requirements/lock.txt pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--requirement requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

# Re-resolve pyproject.toml into requirements/lock.txt and requirements/emr.txt (scripts/lock.sh).
lock:
	PYTHON=$(PYTHON) scripts/lock.sh

install: $(VENV)/.installed

sample: install
	$(BIN)/fruits-pipeline run --input $(SAMPLE_INPUT) --output $(SAMPLE_OUTPUT) \
		--weights $(WEIGHTS) --overwrite

# Debian packages, installed quietly: apt's output is shown only when it fails.
apt_install = log=$$(mktemp) && { { apt-get update -qq && apt-get install -y -qq $(1); } \
	>"$$log" 2>&1 || { cat "$$log" >&2; rm -f "$$log"; exit 1; }; } && rm -f "$$log"

# The jars Spark needs off EMR (S3A for s3://, Iceberg for --table): copied once from Maven
# Central with mvn (installed when missing), checked by sha256, cached outside the repository
# (see scripts/fetch_jars.sh).
jars:
	@command -v mvn >/dev/null || { $(call apt_install,maven); }
	scripts/fetch_jars.sh >/dev/null

# shellcheck and chromium are Debian packages the tests use; installed only when missing.
test-tools: install jars
	@command -v shellcheck >/dev/null && command -v chromium >/dev/null || { \
		$(call apt_install,shellcheck chromium); }

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/python -m benchmarks.docs --check

# docs/performance.md from the benchmarks' results files (benchmarks/docs.py); run it after a
# benchmark writes benchmarks/results/, and commit both.
docs: install
	$(BIN)/python -m benchmarks.docs

# Tests run in PYTEST_WORKERS processes side by side (pytest-xdist), a module (or a group of
# modules, see tests/conftest.py) whole in one of them; PYTEST_WORKERS=0 runs them in this one.
# Modules are handed out in collection order, tests/e2e/ (the longest) first and then the
# longest of the other tiers (tests/conftest.py, LONG_MODULES), so no long module is left to run
# alone at the end (xdist would order them by their number of tests).
PYTEST_WORKERS ?= 2
PYTEST := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest \
	--numprocesses $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: test-tools lint
	$(PYTEST) --durations=15 $(PYTEST_ARGS)

test-quick: test-tools lint
	$(PYTEST) --tier unit,spark --durations=5 $(PYTEST_ARGS)

test-unit test-spark test-e2e: test-%: test-tools
	$(PYTEST) --tier $* --durations=10 $(PYTEST_ARGS)

clean:
	rm -rf runs .pytest_cache .ruff_cache spark-warehouse
