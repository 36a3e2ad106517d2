"""A peer rank: ``python -m backends.parallel.peer torch|jax``.

The one entry point of the processes that hold a data-parallel session's other shards
(started by rank 0 through :func:`backends.parallel.ranks.start_peers`, or by ``gdbench
rank`` on another host). It is the only module that imports each framework's ``serve``,
so that ``ranks`` stays framework-free and no module of this package imports another in
a circle.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

from backends.parallel.ranks import NO_RANK0, PEER_MODULE, missing_launch_vars


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that started it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str]) -> int:
    """A peer rank (``python -m backends.parallel.peer torch|jax``): torch's serves every session
    of one rank 0; jax's serves one world (one rank-0 process) and returns."""
    if os.environ.get("GDBENCH_RANK_LOCAL"):
        _die_with_parent()
    cores = os.environ.get("GDBENCH_RANK_CORES")
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, [int(c) for c in cores.split(",")])
    framework = argv[0] if argv else "torch"
    if error := missing_launch_vars(framework):
        print(f"gdbench rank: {error}", file=sys.stderr)
        return 2
    if framework == "jax":
        from backends.parallel import jax_parallel

        return jax_parallel.serve()
    from backends.parallel import torch_parallel

    return torch_parallel.serve()


def serve_worlds(framework: str) -> int:
    """``gdbench rank`` on another host. torch: one process serves every rank 0 in turn.
    jax: ``jax.distributed.initialize`` runs once per process, and every K of every jax
    variant is a rank-0 process of its own (a world), so each world is served by a
    fresh child process, until none has come for GDBENCH_RANK_IDLE seconds."""
    if error := missing_launch_vars(framework):
        print(f"gdbench rank: {error}", file=sys.stderr)
        return 2
    if framework != "jax":
        return main([framework])
    module = os.environ.get("GDBENCH_RANK_MODULE", PEER_MODULE)
    failures = 0
    while True:
        status = subprocess.run([sys.executable, "-m", module, "jax"], check=False).returncode
        if status != NO_RANK0:
            print(f"gdbench rank: a jax world ended, status {status}", flush=True)
        if status in (NO_RANK0, 2):  # done waiting, or a usage error the child named
            return 0 if status == NO_RANK0 else 2
        # 0: its rank 0 ended the world; else the world broke (rank 0 died): serve the
        # next one, unless the children keep failing (then something here is wrong)
        failures = 0 if status == 0 else failures + 1
        if failures == 3:
            print(f"gdbench rank: 3 jax worlds in a row ended with status {status}; stopping",
                  file=sys.stderr)  # fmt: skip
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
