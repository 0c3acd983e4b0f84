# Two entry points for a newcomer: `make demo` (main job end to end on simulated data) and
# `make test` (lint, then the whole suite). Both create .venv from the pinned requirements when missing.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.10 python3.9 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3,9) <= sys.version_info[:2] <= (3,12)))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= /tmp/kaml-demo
# Test processes (BUILD.md: each imports TensorFlow); a file's tests stay in one process.
TEST_WORKERS ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TF_USE_LEGACY_KERAS := 1

.PHONY: demo test lint venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py
	@if [ -z "$(PYTHON)" ]; then echo "error: kaml-tf needs Python 3.9-3.12 (TensorFlow 2.16 supports no other); install one and retry, or run 'make PYTHON=/path/to/python3.11 ...'" >&2; exit 1; fi
	@echo "creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m pipelines.demo --output_dir=$(DEMO_DIR)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV)
