"""A pytest plugin for tests only: numpy-manual raises inside training.

Loaded into a real run with ``PYTEST_ADDOPTS="-p tests.fault_plugin"`` so that the
gdbench command meets a backend failing the way a framework error would.
"""

from __future__ import annotations

import backends.numpy_backend as numpy_backend


def _broken_prepare(self, problem, *, record_params=False):
    raise RuntimeError("simulated framework error\nwith a second line nobody should see")


def pytest_configure(config) -> None:
    numpy_backend.NumpyManual.prepare = _broken_prepare  # type: ignore[method-assign]
