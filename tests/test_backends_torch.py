"""torch-specific promises: one compiled graph per session, no recompilation in rounds."""

from __future__ import annotations

import pytest

from suites.convergence import compare
from suites.problems import preset, synthetic
from tests.conftest import backend_or_skip

torch = pytest.importorskip("torch", reason="torch is not installed")


def test_torch_compile_rounds_reuse_the_graph_compiled_in_warmup() -> None:
    from torch._dynamo.utils import counters  # internal, but the one record of compiles

    backend = backend_or_skip("torch-compile")
    session = backend.prepare(synthetic(64, 3, seed=4, epochs=20))
    session.warmup()
    compiled = counters["stats"]["unique_graphs"]
    for _ in range(3):
        session.train()
    assert counters["stats"]["unique_graphs"] == compiled


def test_many_torch_compile_sessions_do_not_hit_the_recompile_limit() -> None:
    backend = backend_or_skip("torch-compile")
    # More distinct problems than dynamo's recompile limit (8) for one code object.
    for k in range(10):
        problem = preset("toy-20").replace(lr=0.001 * (k + 1), epochs=5)
        assert compare(problem, backend.prepare(problem).train()).ok
