# Two entry points: `make bench` (the benchmark) and `make test` (the tests).
# Each creates .venv when missing and installs through constraints.txt, which pins torch
# and jax (an unpinned torch pulls several GB of CUDA packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
ARGS   ?=

# The tox environments this machine can run: its own Python x every framework set. The
# all-frameworks set is .venv itself (the same install as tox's pyXY-all), so it is not
# built a second time.
TOX_PY    := py$(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])')
TEST_ENVS := lint,type,$(TOX_PY)-numpy,$(TOX_PY)-torch,$(TOX_PY)-jax

.PHONY: bench test test-envs test-all unit perf venv clean

$(BIN)/gdbench: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[all,test]" "tox>=4.11"
	touch $@

venv: $(BIN)/gdbench

## The benchmark: convergence check + per-epoch cost of every variant, on the CPU by default.
bench: venv
	$(BIN)/gdbench run $(ARGS)

## The tests: the tox environments above one after the other, and beside them every test
## with all frameworks (what tox's pyXY-all runs) in .venv. Two streams on two cores: the
## tests time nothing, so sharing the cores costs them nothing but wall time. Each
## stream's output is shown when it ends.
test: venv
	@echo "make test: tox ($(TEST_ENVS)) and the all-frameworks tests in .venv, side by side"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-envs test-all

test-envs: venv
	$(BIN)/tox run -e $(TEST_ENVS) -- $(ARGS)

test-all: venv
	GDBENCH_EXPECT_FRAMEWORKS=numpy,torch,jax $(BIN)/python -m pytest $(ARGS)

## The tests in .venv alone (all frameworks), for a quick local check.
unit: venv
	$(BIN)/python -m pytest $(ARGS)

## Measure this machine and regenerate docs/performance.md (a few minutes; run it alone).
perf: venv
	$(BIN)/python -m suites.perf

clean:
	rm -rf $(VENV) .tox .pytest_cache .benchmarks build *.egg-info
