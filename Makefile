# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench synth-baselines clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# safety-gymnasium 1.0.0 (latest release, 2023) pins pygame==2.1.0 (no wheel for Python 3.11), gymnasium==0.28.1
# and mujoco==2.3.3, all incompatible with the stack above, and pip extras cannot say --no-deps: so it is installed
# here without its pins, and trajlab.envs.safety_compat makes it import on gymnasium 1.0.
SAFETY_GYMNASIUM := safety-gymnasium==1.0.0

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps $(SAFETY_GYMNASIUM)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(BIN)/trajlab quickstart

test: $(STAMP)
	$(BIN)/lint-imports --no-logo --no-cache
	MUJOCO_GL=egl $(BIN)/python -m pytest -q -n 2 -m "not slow" tests

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"

# MST and AIM baselines of `trajlab synth` (optional, never in install/test/CI: it brings jax, about 0.7 GB).
# smartnoise-synth 1.0.8 pins opacus<0.15 (for DPCTGAN, which stays broken); MST and AIM work with opacus 1.6, so it
# goes in without its pins and the `synth-baselines` extra brings what MST and AIM do need.
SMARTNOISE_SYNTH := smartnoise-synth==1.0.8

synth-baselines: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,synth-baselines]"
	$(BIN)/pip install --quiet --no-deps $(SMARTNOISE_SYNTH)

clean:
	rm -rf $(VENV) .pytest_cache
