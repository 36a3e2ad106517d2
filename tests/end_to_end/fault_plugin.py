"""A pytest plugin for tests only: numpy-manual raises inside training on the `toy` problem.

Loaded into a real run with ``PYTEST_ADDOPTS="-p tests.end_to_end.fault_plugin"`` so that the
gdbench command meets a backend failing the way a framework error would. Other problems,
and other backends, must still run.
"""

from __future__ import annotations

import backends.numpy_backend as numpy_backend

_real_prepare = numpy_backend.NumpyManual.prepare


def _prepare_failing_on_toy(self, problem, *, record_params=False):
    if problem.name == "toy":
        raise RuntimeError("simulated framework error\nwith a second line nobody should see")
    return _real_prepare(self, problem, record_params=record_params)


def pytest_configure(config) -> None:
    numpy_backend.NumpyManual.prepare = _prepare_failing_on_toy  # type: ignore[method-assign]
