# Two entry points: `make bench` (the benchmark) and `make test` (the tests).
# Each creates .venv when missing and installs through constraints.txt, which pins torch
# and jax (an unpinned torch pulls several GB of CUDA packages). pip gets the caller's
# environment: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make bench
# installs torch's CPU build (README, Install).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
ARGS   ?=

# The tox environments this machine can run: its own Python x every framework set, and
# the static checks. The all-frameworks set is .venv itself (the same install as tox's
# pyXY-all), so it is not built a second time.
TOX_PY      := py$(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])')
STATIC_ENVS := lint,type
SET_ENVS    := $(TOX_PY)-numpy,$(TOX_PY)-torch,$(TOX_PY)-jax
TEST_ENVS   := $(STATIC_ENVS),$(SET_ENVS)

.PHONY: bench test test-envs test-sets test-static test-all unit perf mutation venv clean

$(BIN)/gdbench: pyproject.toml constraints.txt
	@echo "Setting up $(VENV): numpy, torch, jax and the test tools (a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[all,test]" "tox>=4.11"
	touch $@

venv: $(BIN)/gdbench

## The benchmark: convergence check + per-epoch cost of the core variants (ARGS="--backends
## all" for every one), on the CPU by default.
bench: venv
	$(BIN)/gdbench run $(ARGS)

## The tests, on two cores (they time nothing, so sharing the cores costs them nothing
## but wall time; each part's output is shown when it ends), in three parts, two at once:
## - test-sets: the tox environments of each framework set, one after the other: their
##   fast groups and the smoke suites;
## - test-all: beside them, in .venv with every framework (the set tox's pyXY-all has),
##   what needs them all: the end-to-end tests, the suites' and the checks at the top of
##   tests/, a file per pytest-xdist worker (two: their subprocesses often wait);
## - test-static: lint (ruff, the import contracts) and type (mypy), when test-all ends.
## Every test runs somewhere; each end-to-end test runs once (tox.ini says where).
test: venv
	@echo "make test: tox ($(TEST_ENVS)) and the all-frameworks tests in .venv, side by side"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sets test-all test-static

## Every tox environment above, one after the other.
test-envs: venv
	$(BIN)/tox run -e $(TEST_ENVS) -- $(ARGS)

test-sets: venv
	$(BIN)/tox run -e $(SET_ENVS) -- $(ARGS)

test-static: venv
	$(BIN)/tox run -e $(STATIC_ENVS)

test-all: venv
	GDBENCH_EXPECT_FRAMEWORKS=numpy,torch,jax $(BIN)/python -m pytest tests \
	  --ignore=tests/backends --ignore=tests/reports -n 2 --dist loadfile $(ARGS)

## The tests in .venv alone (all frameworks), for a quick local check.
unit: venv
	$(BIN)/python -m pytest $(ARGS)

## Measure this machine and regenerate docs/performance.md (about half an hour on 2 cores;
## run it alone).
perf: venv
	$(BIN)/python -m suites.perf

## The mutation score of the numerical core and the report frame (docs/mutation.md): mutmut
## 3 runs each mutant against the fast unit tests that call the mutated function. Long (see
## the doc); not part of `make test`. MUTATION_JOBS mutants at a time (default 1: the tests
## themselves use every core); results are kept in mutants/, so a second run only retests
## what changed.
## MUTANTS=FILE runs and scores only the mutants named in FILE, one a line (a sample:
## docs/mutation.md).
MUTATION_JOBS ?= 1
MUTATION_MIN  ?= 85
MUTANTS       ?=

## The score per module and in total: killed (a timeout counts as killed) over killed and
## not killed (survived, no tests, suspicious, not checked); exit 1 below MUTATION_MIN percent.
mutation: venv
	$(PIP) -e ".[mutation]"
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(if $(MUTANTS),$$(cat $(MUTANTS)))
	$(BIN)/mutmut results --all true | $(if $(MUTANTS),grep -F -w -f $(MUTANTS) |) \
	  awk -F': ' -v min=$(MUTATION_MIN) ' \
	  /__mutmut_/ { m = $$1; sub(/^ +/, "", m); sub(/\.[^.]*$$/, "", m); \
	    if ($$2 == "skipped") next; \
	    k = ($$2 == "killed" || $$2 == "timeout"); killed[m] += k; n[m]++; K += k; N++ } \
	  END { for (m in n) printf "%-28s %5d / %5d killed  %5.1f%%\n", m, killed[m], n[m], \
	          100 * killed[m] / n[m] | "sort"; close("sort"); \
	        printf "%-28s %5d / %5d killed  %5.1f%%\n", "total", K, N, N ? 100 * K / N : 0; \
	        exit (N == 0 || 100 * K / N < min) }'

clean:
	rm -rf $(VENV) .tox .pytest_cache .benchmarks build *.egg-info
