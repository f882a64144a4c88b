# usedge developer entry points. The venv lives in .venv/ and is (re)created from pyproject.toml,
# so a clean clone needs nothing but python3 (>= 3.10) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test bench browser demo clean help

help:
	@echo "make run    install the scanner runtime and run the main job on the built-in default"
	@echo "make test   install the dev extras and run the test suite"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make demo   install the demo extras (no torch) and open the browser demo on the packaged default"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extras set: re-installs only when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The main job: export the built-in default student (shipped in usedge/assets/default_student) to a gated,
# verified INT8 bundle in out/bundle; the phantom calibration / gate set is generated on first use.
RUN_EXTRAS := train,cpu

run: $(VENV)/.installed-$(RUN_EXTRAS)
	$(BIN)/usedge export --int8

# Tests need the training stack too (torch from the machine's wheel cache, timm, smp, OpenVINO, ORT).
TEST_EXTRAS := dev,train,cpu

test: $(VENV)/.installed-$(TEST_EXTRAS) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The demo's real-browser test drives Debian's Chromium headless (Playwright, executable /usr/bin/chromium).
# Installed here when missing and possible (root + apt); otherwise that one test skips and says why.
browser:
	@[ -x /usr/bin/chromium ] || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: Debian's chromium could not be installed; tests/demo's real-browser test will skip"

demo: $(VENV)/.installed-demo,cpu
	$(BIN)/usedge demo

bench: $(VENV)/.installed-$(TEST_EXTRAS)
	$(BIN)/python benchmarks/bench_phantom.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
