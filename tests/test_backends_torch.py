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


def test_torch_compile_sessions_after_a_sweep_compile_static_shapes() -> None:
    # dynamo records, per (file, line, code name), the sizes it has seen; once they
    # differ it marks them dynamic (AutoDynamic) and compiles slower generic kernels.
    from torch._dynamo import pgo  # internal: the only record of that decision

    backend = backend_or_skip("torch-compile")
    for n in (50, 80, 120):  # a sweep: the same step, three sizes
        backend.prepare(synthetic(n, 3, epochs=2)).warmup()
    states = {k.name: v for k, v in pgo.get_code_state().items() if k.name.startswith("step_")}
    assert len(states) >= 3
    for name, state in states.items():
        for source, entry in state.automatic_dynamic.items():
            assert "AutoDynamic" not in str(entry.size), (name, source)
