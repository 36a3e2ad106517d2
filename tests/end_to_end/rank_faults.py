"""A peer rank for tests only, started instead of ``backends.parallel.peer`` through
``GDBENCH_RANK_MODULE=tests.end_to_end.rank_faults``: rank 1 fails on its first training command
(torch: ``python -m tests.end_to_end.rank_faults torch``; jax: ``... jax``, process 1).

``GDBENCH_TEST_RANK_FAULT=die``: the process exits at once (as a rank killed by the
kernel would); ``hang``: it sleeps far past every timeout, writing its pid to
``GDBENCH_TEST_RANK_PIDFILE`` first.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from backends.parallel import peer


def _fail() -> None:
    if pidfile := os.environ.get("GDBENCH_TEST_RANK_PIDFILE"):
        Path(pidfile).write_text(str(os.getpid()))
    how = os.environ.get("GDBENCH_TEST_RANK_FAULT", "")
    if how == "die":
        os._exit(3)
    if how == "hang":
        time.sleep(3600)


def _plant_torch() -> None:
    from backends.parallel import torch_parallel

    real = torch_parallel._Rank.fit

    def fit(self, epochs, record=False):  # noqa: ANN001, ANN202
        if self.rank == 1 and epochs > torch_parallel.WARMUP_EPOCHS:  # a timed or checked run
            _fail()
        return real(self, epochs, record)

    torch_parallel._Rank.fit = fit  # type: ignore[method-assign]


def _plant_jax() -> None:
    from backends.parallel import jax_parallel

    real = jax_parallel._timed_train

    def timed_train(session, epochs):  # noqa: ANN001, ANN202  # a peer's train step
        if os.environ.get("JAX_PROCESS_ID") == "1":
            _fail()
        return real(session, epochs)

    jax_parallel._timed_train = timed_train


if __name__ == "__main__":
    _plant_jax() if sys.argv[1:2] == ["jax"] else _plant_torch()
    sys.exit(peer.main(sys.argv[1:]))
