# Two commands do all the set-up: `make demo` and `make test`.
# Both create (or reuse) the shared Python 3.12 environment first; see tools/venv.sh.
SHELL := /bin/bash
PY := .venv/bin/python
DEVICE ?= cpu
PYTEST_ARGS ?=

.PHONY: venv kit demo test test-fast clean-cache

venv:
	@bash tools/venv.sh

## Isaac Sim's Kit kernel in a side environment, for the Kit extension test (tools/kit_venv.sh)
kit: venv
	@bash tools/kit_venv.sh > /dev/null

PROFILE ?= quick
TASK ?= VTRefine-PegInHole-Aloha

## the main job: the paper's recipe on peg-in-hole, quick profile, CPU (resumes an unfinished run)
demo: venv
	$(PY) -m vt_refine.app.cli pipeline --task $(TASK) --profile $(PROFILE) --device $(DEVICE)

## the whole test suite (what CI runs)
test: venv kit
	$(PY) -m pytest $(PYTEST_ARGS)

## unit tests only (no simulation, nothing that takes minutes: no Kit, no learning runs)
test-fast: venv
	$(PY) -m pytest -m "not sim and not slow" $(PYTEST_ARGS)

## forget generated assets (they are rebuilt on the next run)
clean-cache:
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/vt_refine/assets
