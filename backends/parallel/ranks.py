"""Data-parallel ranks: how the rows are split, which cores each rank gets, and the
processes that hold the other shards.

Framework-free. A data-parallel session (``torch_parallel``, and ``jax_parallel``'s
K-process form) runs rank 0 in the calling process and starts the other K−1 ranks as
child processes of it, each running ``python -m backends.parallel.peer FRAMEWORK``; they join
rank 0 on 127.0.0.1 and a free port, and serve its commands until it ends. Across
hosts the frameworks' own launch conventions are used instead: torchrun's
(``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``) for torch, jax's
coordinator (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``)
for jax: rank 0 starts no peers, and each other host runs ``gdbench rank`` (docs/parallel.md,
"Several hosts").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

# Seconds a collective or a rendezvous may wait for a rank before it fails: a rank that
# died or hangs must fail its case, not hang the run (the worker's own --timeout is the
# outer bound).
RANK_TIMEOUT_S = float(os.environ.get("GDBENCH_RANK_TIMEOUT", "60"))
# Seconds `gdbench rank` on another host waits for a (next) rank 0 before it leaves: the
# gap between two data-parallel workers of a run can be long (a K = 1 worker between
# them runs every problem of the sweep)
IDLE_TIMEOUT_S = float(os.environ.get("GDBENCH_RANK_IDLE", "600"))
LAUNCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")
# jax's own: jax.distributed.initialize reads the address itself; the count and the id
# are passed on from these (gdbench's names, in jax's style)
JAX_LAUNCH_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
FRAMEWORKS = ("torch", "jax")
# A jax peer's exit status when no rank 0 came within RANK_TIMEOUT_S: `gdbench rank`
# then stops waiting for more (any other status: it serves the next rank 0)
NO_RANK0 = 3
# The module a peer process runs (``python -m PEER_MODULE FRAMEWORK``)
PEER_MODULE = "backends.parallel.peer"
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


def wait_for_listener(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts TCP connections on ``host:port`` within ``timeout``
    seconds (polled; each try bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


@dataclass(frozen=True)
class Launch:
    """Where rank 0's process group listens, and this process's place in it."""

    addr: str
    port: int
    rank: int
    world: int
    remote: bool  # set by the user's environment (other hosts): start no local peers


def launch_for(world: int, framework: str = "torch") -> Launch:
    """Rank 0's rendezvous for a session of ``world`` ranks: the user's launch
    environment when it names this world size (several hosts: torchrun's for torch,
    jax's coordinator for jax), else 127.0.0.1 and a free port with local peers."""
    if framework == "jax":
        return _jax_launch_for(world)
    env = {k: os.environ.get(k) for k in LAUNCH_VARS}
    if all(env.values()) and world > 1:
        size = int(env["WORLD_SIZE"] or 0)
        if int(env["RANK"] or 0) != 0:
            raise ValueError("gdbench runs rank 0; the other hosts run `gdbench rank`")
        if size == world:
            return Launch(str(env["MASTER_ADDR"]), int(env["MASTER_PORT"] or 0), 0, world, True)
    return Launch("127.0.0.1", free_port(), 0, world, False)


def _jax_launch_for(world: int) -> Launch:
    env = {k: os.environ.get(k) for k in JAX_LAUNCH_VARS}
    if env["JAX_COORDINATOR_ADDRESS"] and env["JAX_NUM_PROCESSES"] and world > 1:
        if int(env["JAX_PROCESS_ID"] or 0) != 0:
            raise ValueError(
                "gdbench runs process 0; the other hosts run `gdbench rank --framework jax`"
            )
        if int(env["JAX_NUM_PROCESSES"]) == world:
            host, _, port = str(env["JAX_COORDINATOR_ADDRESS"]).rpartition(":")
            return Launch(host, int(port), 0, world, True)
    return Launch("127.0.0.1", free_port(), 0, world, False)


def peer_env(
    launch: Launch, rank: int, threads: int, cores: list[int], device: str,
    framework: str = "torch",
) -> dict[str, str]:  # fmt: skip
    """The environment of local peer ``rank``: the launch variables of ``framework``,
    its cores, thread count and device, and that it is local (it dies with this
    process)."""
    env = dict(os.environ)
    if framework == "jax":
        env.update(JAX_COORDINATOR_ADDRESS=f"{launch.addr}:{launch.port}",
                   JAX_NUM_PROCESSES=str(launch.world), JAX_PROCESS_ID=str(rank))  # fmt: skip
    else:
        env.update(MASTER_ADDR=launch.addr, MASTER_PORT=str(launch.port), RANK=str(rank),
                   WORLD_SIZE=str(launch.world))  # fmt: skip
    env.update(GDBENCH_RANK_CORES=",".join(map(str, cores)), GDBENCH_RANK_DEVICE=device,
               GDBENCH_RANK_LOCAL="1")  # fmt: skip
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
        env = peer_env(launch, rank, threads, mine, device, framework)
        # GDBENCH_RANK_MODULE: tests start peers that fail on purpose
        # (tests/end_to_end/rank_faults.py)
        module = os.environ.get("GDBENCH_RANK_MODULE", PEER_MODULE)
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


def missing_launch_vars(framework: str) -> str | None:
    """The one-line error for a peer started without its framework's launch variables
    (or for an unknown framework), else None."""
    if framework not in FRAMEWORKS:
        return f"unknown framework '{framework}'; choose from: {', '.join(FRAMEWORKS)}"
    names, whose = (
        (JAX_LAUNCH_VARS, "jax's coordinator") if framework == "jax"
        else (LAUNCH_VARS, "torchrun's variables")
    )  # fmt: skip
    missing = [k for k in names if not os.environ.get(k)]
    return f"set {', '.join(missing)} ({whose})" if missing else None
