"""Data-parallel ranks: how the rows are split, which cores each rank gets, and the
processes that hold the other shards.

Framework-free. A data-parallel session (``torch_parallel``) runs rank 0 in the
calling process and starts the other K−1 ranks as child processes of it, each running
``python -m backends.ranks``; they join rank 0's process group on 127.0.0.1 and a free
port, and serve its commands until it closes the session. Across hosts the frameworks'
own launch convention is used instead (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``,
``WORLD_SIZE``, as torchrun sets them): rank 0 starts no peers, and each other host
runs ``gdbench rank`` (README, "Several hosts").
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

# Seconds a collective or a rendezvous may wait for a rank before it fails: a rank that
# died or hangs must fail its case, not hang the run (the worker's own --timeout is the
# outer bound).
RANK_TIMEOUT_S = float(os.environ.get("GDBENCH_RANK_TIMEOUT", "60"))
LAUNCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")
# How the ranks' shares of the loss are weighed: "global" (each rank's sum of squares
# over the global N: exact) or "local-mean" (each rank's own mean, averaged: the bug the
# tests plant).
WEIGHTINGS = ("global", "local-mean")


def check_weighting(weighting: str) -> str:
    """``weighting`` if it is one of WEIGHTINGS, else a ValueError naming them."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting '{weighting}'; choose from: {', '.join(WEIGHTINGS)}")
    return weighting


def shard_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """[start, stop) of each rank's rows: sizes differ by at most one (the first n % K
    ranks hold one more), so no rank is padded and none is empty while n ≥ K."""
    if world < 1 or n < world:
        raise ValueError(f"cannot split {n} rows over {world} ranks: need at least one each")
    base, extra = divmod(n, world)
    bounds, start = [], 0
    for rank in range(world):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def rank_cores(rank: int, world: int, cores: list[int]) -> list[int]:
    """The cores rank ``rank`` of ``world`` is pinned to: an equal share of ``cores``
    (at least one each), or all of them when there are more ranks than cores."""
    if world > len(cores):
        return list(cores)
    share = len(cores) // world
    return list(cores[rank * share : (rank + 1) * share])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Launch:
    """Where rank 0's process group listens, and this process's place in it."""

    addr: str
    port: int
    rank: int
    world: int
    remote: bool  # set by the user's environment (other hosts): start no local peers


def launch_for(world: int) -> Launch:
    """Rank 0's rendezvous for a session of ``world`` ranks: the user's torchrun-style
    environment when it names this world size (several hosts), else 127.0.0.1 and a
    free port with local peers."""
    env = {k: os.environ.get(k) for k in LAUNCH_VARS}
    if all(env.values()) and world > 1:
        size = int(env["WORLD_SIZE"] or 0)
        if int(env["RANK"] or 0) != 0:
            raise ValueError("gdbench runs rank 0; the other hosts run `gdbench rank`")
        if size == world:
            return Launch(str(env["MASTER_ADDR"]), int(env["MASTER_PORT"] or 0), 0, world, True)
    return Launch("127.0.0.1", free_port(), 0, world, False)


def peer_env(
    launch: Launch, rank: int, threads: int, cores: list[int], device: str
) -> dict[str, str]:
    """The environment of local peer ``rank``: the launch variables, its cores, thread
    count and device, and that it is local (it dies with this process)."""
    env = dict(os.environ)
    env.update(MASTER_ADDR=launch.addr, MASTER_PORT=str(launch.port), RANK=str(rank),
               WORLD_SIZE=str(launch.world), GDBENCH_RANK_CORES=",".join(map(str, cores)),
               GDBENCH_RANK_DEVICE=device, GDBENCH_RANK_LOCAL="1")  # fmt: skip
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def start_peers(
    launch: Launch, framework: str, threads: int, cores: list[int], device: str
) -> list[subprocess.Popen]:
    """Start ranks 1 … K−1 on this host (none when the launch is remote). They are
    children of this process and in its process group, so the run's manager stops them
    with it; each also dies with this process (PR_SET_PDEATHSIG)."""
    if launch.remote:
        return []
    procs = []
    for rank in range(1, launch.world):
        mine = rank_cores(rank, launch.world, cores)
        env = peer_env(launch, rank, threads, mine, device)
        # GDBENCH_RANK_MODULE: tests start peers that fail on purpose (tests/rank_faults.py)
        module = os.environ.get("GDBENCH_RANK_MODULE", "backends.ranks")
        procs.append(subprocess.Popen([sys.executable, "-m", module, framework], env=env))
    return procs


def stop_peers(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """Wait for the peers to leave (``timeout`` 0: at once); kill the ones still there."""
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that started it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str]) -> int:
    """A peer rank (``python -m backends.ranks torch``; ``gdbench rank`` on other hosts)."""
    if os.environ.get("GDBENCH_RANK_LOCAL"):
        _die_with_parent()
    cores = os.environ.get("GDBENCH_RANK_CORES")
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, [int(c) for c in cores.split(",")])
    missing = [k for k in LAUNCH_VARS if not os.environ.get(k)]
    if missing:
        print(f"gdbench rank: set {', '.join(missing)} (torchrun's variables)", file=sys.stderr)
        return 2
    framework = argv[0] if argv else "torch"
    if framework != "torch":
        print(f"gdbench rank: unknown framework '{framework}'; choose from: torch", file=sys.stderr)
        return 2
    from backends import torch_parallel

    return torch_parallel.serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
