# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the releases on this machine's disk (others download GBs).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install install-test bench bench-full clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/lrscout find --dataset digits --model simplecnn --optimizer sgd --out runs/demo

test: install-test
	$(BIN)/python -m pytest -q -n 2 tests

# under an hour on 2 cores from an empty cache: speed, fine-tuning and the short-protocol
# quality sets (development and held-out 2-8, 2 seeds); results in benchmarks/results/hour/ and the
# benchmark block of README.md
bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py --hour

# every quality task, 3 seeds (about 3 hours from an empty cache); updates README.md's tables
bench-full: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf runs
