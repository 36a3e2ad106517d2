"""A pytest plugin for tests only, loaded into gdbench's workers through PYTEST_ADDOPTS:
numpy-manual dies the way a framework can on the problem named by GDBENCH_TEST_FAULT.

``GDBENCH_TEST_FAULT=abort:toy-20``: ``os.abort()`` (SIGABRT, as a failed assertion in
C++ would); ``hang:toy-20``: starts a child process (as torch.compile starts compile
workers) whose pid it writes to ``GDBENCH_TEST_FAULT_PIDFILE``, then sleeps far past any
timeout. Other problems, and every other backend, run normally.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import backends.numpy_backend as numpy_backend

_real_prepare = numpy_backend.NumpyManual.prepare


def _prepare_with_fault(self, problem, *, record_params=False):
    how, _, where = os.environ.get("GDBENCH_TEST_FAULT", "").partition(":")
    if problem.name == where:
        if how == "abort":
            os.abort()
        if how == "hang":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            pidfile = os.environ.get("GDBENCH_TEST_FAULT_PIDFILE")
            if pidfile:
                Path(pidfile).write_text(f"{os.getpid()} {child.pid}")
            time.sleep(3600)
    return _real_prepare(self, problem, record_params=record_params)


def pytest_configure(config) -> None:
    numpy_backend.NumpyManual.prepare = _prepare_with_fault  # type: ignore[method-assign]
