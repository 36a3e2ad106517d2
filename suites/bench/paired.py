"""One contender of paired rounds: a worker that times one round whenever it is told to.

After the planned rounds, the manager (``suites/run/paired.py``) starts one of these per
variant whose interval overlaps the fastest's, and alternates between them: while one
times a round, the others wait on a read of their standard input, so only one process
computes at a time, and round i of each contender lies next to the others' round i in
time. A drift of the machine then hits every contender alike, and their ratio is
measured from pairs of neighbouring rounds.

The worker builds the same backend and problem as the case it continues (the same
options, the same threads and environment), prepares and warms up a session, and times
rounds of the case's own ``iterations`` trainings. It checks its first training against
the float64 reference, as the case did. The protocol is one JSON object per line:

- it writes ``{"ready": true}`` once warmed up, or ``{"error": "..."}`` and exits;
- each ``round`` line it reads times one round and writes ``{"s": seconds per training}``;
- ``stop`` (or the end of its input) closes the session and exits.

Run as ``python -m suites.bench.paired SPEC`` where SPEC is the JSON of
:func:`spec`; re-runnable by hand from the line in the run's ``workers/`` log.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from backends import effective_precision, framework_of, get_backend
from suites import machine
from suites.bench.case import close_session, warm_up
from suites.config import RunConfig, parse
from suites.convergence import compare
from suites.records import first_line


def spec(cfg: RunConfig, variant: str, device: str, problem: str, iterations: int) -> str:
    """The command-line argument that tells a worker what to time."""
    return json.dumps({"options": cfg.to_options(), "quick": cfg.quick, "variant": variant,
                       "device": device, "problem": problem, "iterations": iterations})  # fmt: skip


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(args[0])
    cfg = parse(**job["options"], quick=job["quick"], default_devices=("cpu", "cuda"))
    machine.pin_cores(cfg.threads)
    variant, device, iterations = job["variant"], job["device"], int(job["iterations"])
    try:
        backend = get_backend(variant, device, cfg.matmul_precision, cfg.block_rows,
                              threads=cfg.threads)  # fmt: skip
        machine.apply_threads(framework_of(variant), cfg.threads)
        warm_up(backend, cfg.dtype)
        problem = cfg.build_problem(job["problem"]).precompute()
        session = backend.prepare(problem.with_own_data())
        session.warmup()
        precision = effective_precision(cfg.matmul_precision, device)  # TF32 on CUDA only
        verdict = compare(problem, session.train(), precision)
        if not verdict.ok:
            raise RuntimeError(f"does not agree with the reference: {verdict.message}")
    except Exception as err:  # noqa: BLE001 - unavailable, or it failed: the manager says why
        _say({"error": first_line(err)})
        return 1
    _say({"ready": True})
    for line in sys.stdin:
        if line.strip() != "round":
            break
        start = time.perf_counter()
        for _ in range(iterations):
            session.train()
        _say({"s": (time.perf_counter() - start) / iterations})
    close_session(session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
