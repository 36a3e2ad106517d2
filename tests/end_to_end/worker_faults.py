"""A pytest plugin for tests only, loaded into gdbench's workers through PYTEST_ADDOPTS:
numpy-manual dies the way a framework can on the problem named by GDBENCH_TEST_FAULT.

``GDBENCH_TEST_FAULT=abort:toy-20``: ``os.abort()`` (SIGABRT, as a failed assertion in
C++ would); ``hang:toy-20``: starts a child process (as torch.compile starts compile
workers) whose pid it writes to ``GDBENCH_TEST_FAULT_PIDFILE``, then sleeps far past any
timeout; ``wrong:toy-20``: trains one epoch and repeats its loss and parameters for
every other one (a backend that is fast because it is wrong). Other problems, and every
other backend, run normally.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import backends.numpy_backend as numpy_backend
from backends import TrainResult

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
        if how == "wrong":
            one = _real_prepare(self, problem.replace(epochs=1), record_params=False)
            return _Shortcut(one, problem.epochs)
    return _real_prepare(self, problem, record_params=record_params)


class _Shortcut:
    """A session that trains one epoch and claims the others: far faster than the real
    thing, and wrong."""

    def __init__(self, one_epoch, epochs: int) -> None:  # noqa: ANN001
        self.one, self.epochs = one_epoch, epochs

    def warmup(self) -> None:
        self.one.warmup()

    def sync(self) -> None:
        self.one.sync()

    def train(self, epochs=None):  # noqa: ANN001, ANN201
        first = self.one.train()
        return TrainResult(np.repeat(first.losses, epochs or self.epochs), first.w, first.b)


def _plant_local_mean() -> None:
    bases = (("torch_parallel", "_TorchParallel"), ("jax_parallel", "_JaxParallel"),
             ("jax_parallel", "_JaxProcesses"))  # fmt: skip
    for module, base in bases:
        try:
            cls = getattr(importlib.import_module(f"backends.parallel.{module}"), base)
        except ImportError:  # that framework is not installed here
            continue
        real = cls.__init__

        def init(self, *args, _real=real, **kwargs):  # noqa: ANN001, ANN002, ANN003
            _real(self, *args, **(kwargs | {"weighting": "local-mean"}))

        cls.__init__ = init


def pytest_configure(config) -> None:
    numpy_backend.NumpyManual.prepare = _prepare_with_fault  # type: ignore[method-assign]
    if os.environ.get("GDBENCH_TEST_FAULT", "").startswith("local-mean"):
        _plant_local_mean()
