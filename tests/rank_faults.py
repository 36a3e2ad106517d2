"""A peer rank for tests only, started instead of ``backends.ranks`` through
``GDBENCH_RANK_MODULE=tests.rank_faults``: rank 1 fails on its first training command.

``GDBENCH_TEST_RANK_FAULT=die``: the process exits at once (as a rank killed by the
kernel would); ``hang``: it sleeps far past every timeout, writing its pid to
``GDBENCH_TEST_RANK_PIDFILE`` first.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from backends import ranks, torch_parallel

_real_fit = torch_parallel._Rank.fit


def _failing_fit(self, epochs, record=False):  # noqa: ANN001, ANN202
    how = os.environ.get("GDBENCH_TEST_RANK_FAULT", "")
    if self.rank == 1 and epochs > torch_parallel.WARMUP_EPOCHS:  # a timed or checked run
        if pidfile := os.environ.get("GDBENCH_TEST_RANK_PIDFILE"):
            Path(pidfile).write_text(str(os.getpid()))
        if how == "die":
            os._exit(3)
        if how == "hang":
            time.sleep(3600)
    return _real_fit(self, epochs, record)


torch_parallel._Rank.fit = _failing_fit  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(ranks.main(sys.argv[1:]))
