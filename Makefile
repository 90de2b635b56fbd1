# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(BIN)/trajlab quickstart

test: $(STAMP)
	$(BIN)/lint-imports --no-logo --no-cache
	MUJOCO_GL=egl $(BIN)/python -m pytest -q -n 2 -m "not slow" tests

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"

clean:
	rm -rf $(VENV) .pytest_cache
