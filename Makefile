# Two entry points: `make bench` (the benchmark) and `make test` (the tests).
# Each creates .venv when missing and installs the project through constraints.txt,
# which pins torch and jax (an unpinned torch pulls several GB of CUDA packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
ARGS   ?=

.PHONY: bench test unit venv clean

$(BIN)/gdbench: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[all,test]"
	touch $@

venv: $(BIN)/gdbench

## The benchmark: convergence check + per-epoch cost of every variant, on the CPU by default.
bench: venv
	$(BIN)/gdbench run $(ARGS)

## The tests: unit tests and both suites in smoke mode (each benchmark once).
test: venv
	$(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) .tox .pytest_cache .benchmarks build *.egg-info
