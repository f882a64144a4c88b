# usedge developer entry points. The venv lives in .venv/ and is (re)created from pyproject.toml,
# so a clean clone needs nothing but python3 (>= 3.10) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# usedge serve --triton runs NVIDIA's PyTriton, which pins numpy < 2: its own venv, same python3, the CPU runtimes.
# Triton's Python-backend stub needs this interpreter's libpython (usedge.serve.triton.stub_library_dir).
TRITON_VENV := .venv-triton

.PHONY: run test bench browser dicomtools demo triton clean help

help:
	@echo "make run    install the scanner runtime and run the main job on the built-in default"
	@echo "make test   install the dev extras and run the test suite"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make demo   install the demo extras (no torch) and open the browser demo on the packaged default"
	@echo "make triton install usedge[triton] in .venv-triton and serve the packaged default through Triton"

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
	$(BIN)/usedge verify out/bundle

# Tests need the training stack too (torch from the machine's wheel cache, timm, smp, OpenVINO, ORT).
TEST_EXTRAS := dev,train,cpu

test: $(VENV)/.installed-$(TEST_EXTRAS) browser dicomtools $(TRITON_VENV)/.installed
	USEDGE_TRITON_PYTHON=$(abspath $(TRITON_VENV))/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

$(TRITON_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install --quiet -e ".[cpu,serve,triton]"
	touch $@

triton: $(TRITON_VENV)/.installed
	$(TRITON_VENV)/bin/usedge serve --triton

# The demo's real-browser test drives Debian's Chromium headless (Playwright, executable /usr/bin/chromium).
# Installed here when missing and possible (root + apt); otherwise that one test skips and says why.
browser:
	@[ -x /usr/bin/chromium ] || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: Debian's chromium could not be installed; tests/demo's real-browser test will skip"

# The DICOM SR / SEG tests validate what they write with dciodvfy (Debian's dicom3tools), installed the same way;
# without it those checks skip and say why.
dicomtools:
	@command -v dciodvfy >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q dicom3tools >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dicom3tools >/dev/null 2>&1; }; }; } || \
	  echo "note: Debian's dicom3tools could not be installed; the dciodvfy checks of tests/measure will skip"

demo: $(VENV)/.installed-demo,cpu
	$(BIN)/usedge demo

bench: $(VENV)/.installed-$(TEST_EXTRAS)
	$(BIN)/python benchmarks/bench_phantom.py

clean:
	rm -rf $(VENV) $(TRITON_VENV) build *.egg-info .pytest_cache
