"""A pytest plugin for tests only, loaded into gdbench's workers through PYTEST_ADDOPTS:
numpy-manual dies the way a framework can on the problem named by GDBENCH_TEST_FAULT.

``GDBENCH_TEST_FAULT=abort:toy-20``: ``os.abort()`` (SIGABRT, as a failed assertion in
C++ would); ``hang:toy-20``: sleeps far past any timeout. Other problems, and every other
backend, run normally.
"""

from __future__ import annotations

import os
import time

import backends.numpy_backend as numpy_backend

_real_prepare = numpy_backend.NumpyManual.prepare


def _prepare_with_fault(self, problem, *, record_params=False):
    how, _, where = os.environ.get("GDBENCH_TEST_FAULT", "").partition(":")
    if problem.name == where:
        if how == "abort":
            os.abort()
        if how == "hang":
            time.sleep(3600)
    return _real_prepare(self, problem, record_params=record_params)


def pytest_configure(config) -> None:
    numpy_backend.NumpyManual.prepare = _prepare_with_fault  # type: ignore[method-assign]
