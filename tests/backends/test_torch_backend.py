"""torch-specific promises: one compiled graph per session, no recompilation in rounds,
and backends/torch_backend.py's small helpers (the device check, the compilers
torch.compile needs, the CUDA graph's preallocated history on CPU tensors)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from backends import BackendUnavailable, torch_backend  # noqa: E402
from suites.convergence import compare  # noqa: E402
from suites.problems import preset, synthetic  # noqa: E402
from tests.conftest import backend_or_skip  # noqa: E402


def test_torch_compile_rounds_reuse_the_graph_compiled_in_warmup() -> None:
    from torch._dynamo.utils import counters  # internal, but the one record of compiles

    backend = backend_or_skip("torch-compile")
    session = backend.prepare(synthetic(64, 3, seed=4, epochs=20))
    session.warmup()
    compiled = counters["stats"]["unique_graphs"]
    for _ in range(3):
        session.train()
    assert counters["stats"]["unique_graphs"] == compiled


def test_each_torch_compile_session_compiles_one_graph_of_its_own() -> None:
    # More distinct problems than dynamo's recompile limit (8) for one code object. With
    # the limit made fatal, sharing one code object across sessions would raise on the
    # ninth; a graph reused across sessions (guards too loose) would add fewer than one
    # graph per session. Either way the count below is not exactly one per session.
    from torch._dynamo.utils import counters  # internal, but the one record of compiles

    backend = backend_or_skip("torch-compile")
    sessions = 10
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        before = counters["stats"]["unique_graphs"]
        for k in range(sessions):
            problem = preset("toy-20").replace(lr=0.001 * (k + 1), epochs=5)
            assert compare(problem, backend.prepare(problem).train()).ok
        assert counters["stats"]["unique_graphs"] - before == sessions


def test_torch_compile_sessions_after_a_sweep_compile_static_shapes(monkeypatch) -> None:
    # dynamo remembers, per (file, line, code name), the sizes it has seen; once they
    # differ it makes them symbolic (automatic dynamic shapes) and compiles slower
    # generic kernels. A symbolic size is a ShapeEnv symbol (s0, s1, ...): count the
    # ones created while this sweep's sessions compile; a static graph creates none.
    from torch.fx.experimental.symbolic_shapes import ShapeEnv  # internal: no public record

    symbols: list[str] = []
    create = ShapeEnv.create_symbol

    def recording(self, *args, **kwargs):
        made = create(self, *args, **kwargs)
        if getattr(made, "free_symbols", None):  # a symbol, not a specialised constant
            symbols.append(str(made))
        return made

    backend = backend_or_skip("torch-compile")
    monkeypatch.setattr(ShapeEnv, "create_symbol", recording)
    for n in (50, 80, 120):  # a sweep: the same step, three sizes
        session = backend.prepare(synthetic(n, 3, epochs=2))
        session.warmup()
        session.train()
    assert symbols == []


ROUND_VARIANTS = ("torch-autograd", "torch-nn", "torch-manual", "torch-compile")


@pytest.mark.parametrize("variant", ROUND_VARIANTS)
def test_torch_rounds_make_no_tensor_from_a_host_value(monkeypatch, variant) -> None:
    # On a GPU, torch.tensor(value) is a blocking host-to-device copy: one per round
    # would sit inside every timed round. The initial parameters are made once per session.
    problem = preset("toy-bias").replace(epochs=20)
    session = backend_or_skip(variant).prepare(problem)
    session.warmup()
    made = []
    real = torch.tensor

    def counting(*args, **kwargs):
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "tensor", counting)
    results = [session.train() for _ in range(2)]
    assert made == []
    assert all(compare(problem, r).ok for r in results)


def test_precision_is_full_float32_by_default_and_tf32_only_when_asked() -> None:
    from backends import torch_backend

    problem = preset("toy")
    try:
        torch.backends.cuda.matmul.allow_tf32 = True  # as a user's setting could leave it
        backend_or_skip("torch-manual").prepare(problem)
        assert torch_backend.precision_settings() == {
            "float32_matmul_precision": "highest",
            "cuda_matmul_allow_tf32": False,
            "cudnn_allow_tf32": False,
        }
        from backends import get_backend

        # TF32 is a CUDA matter: a CPU session stays at full float32 when it is asked
        # (torch's switch would also let oneDNN reduce the precision of CPU matmuls)
        backend = get_backend("torch-nn", "cpu", matmul_precision="tf32")
        backend.prepare(problem)
        assert backend.matmul_precision == "float32"
        assert torch.get_float32_matmul_precision() == "highest"
        # what a CUDA session sets
        torch_backend.apply_matmul_precision("tf32")
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch_backend.apply_matmul_precision("float32")


def test_an_unknown_matmul_precision_is_refused_with_the_choices() -> None:
    from backends import get_backend

    with pytest.raises(ValueError, match=r"'bf16'; choose from: float32, tf32"):
        get_backend("torch-nn", "cpu", matmul_precision="bf16")


@pytest.fixture
def triton_ready(monkeypatch, tmp_path):
    """Every Triton prerequisite present (faked): each test then takes one away."""
    from backends import torch_backend

    include = tmp_path / "include"
    include.mkdir()
    (include / "Python.h").write_text("")
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libcuda.so.1").write_text("")
    real_find_spec = torch_backend.importlib.util.find_spec
    monkeypatch.setattr(
        torch_backend.importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "triton" else real_find_spec(name, *a),
    )
    monkeypatch.setattr(torch_backend.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(
        torch_backend.sysconfig, "get_paths", lambda scheme=None: {"include": str(include)}
    )
    monkeypatch.setattr(torch_backend.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setenv("TRITON_LIBCUDA_PATH", str(libdir))
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    return torch_backend


def test_triton_prerequisites_all_present(triton_ready) -> None:
    assert triton_ready._triton_missing() is None


def test_a_missing_triton_package_is_named(triton_ready, monkeypatch) -> None:
    monkeypatch.setattr(triton_ready.importlib.util, "find_spec", lambda name, *a: None)
    assert "needs Triton" in triton_ready._triton_missing()


@pytest.mark.parametrize("missing", ["compiler", "headers", "libcuda", "capability"])
def test_each_missing_triton_prerequisite_is_named(triton_ready, monkeypatch, missing) -> None:
    tb = triton_ready
    if missing == "compiler":
        # Triton looks for $CC, gcc and clang: a plain `cc` is not enough
        monkeypatch.setattr(
            tb.shutil, "which", lambda name: "/usr/bin/cc" if name == "cc" else None
        )
        expected = "a C compiler"
    elif missing == "headers":
        monkeypatch.setattr(
            tb.sysconfig, "get_paths", lambda scheme=None: {"include": "/nonexistent"}
        )
        expected = "Python's headers (/nonexistent/Python.h is missing"
    elif missing == "libcuda":
        monkeypatch.delenv("TRITON_LIBCUDA_PATH")
        expected = "libcuda.so"
    else:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (6, 1))
        expected = "compute capability 7.0 or later; this one is 6.1"
    reason = tb._triton_missing()
    assert reason is not None and expected in reason
    assert reason.startswith("torch.compile on CUDA needs")
    # and the CUDA variant is unavailable with that reason, on a machine that has a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(tb.BackendUnavailable, match="torch.compile on CUDA needs"):
        tb.TorchCompile("cuda")


@pytest.mark.parametrize("how", ["ldconfig", "LD_LIBRARY_PATH"])
def test_libcuda_is_found_where_triton_finds_it(triton_ready, monkeypatch, tmp_path, how) -> None:
    tb = triton_ready
    monkeypatch.delenv("TRITON_LIBCUDA_PATH")
    if how == "ldconfig":
        monkeypatch.setattr(tb.ctypes.util, "find_library", lambda name: "libcuda.so.1")
    else:
        monkeypatch.setenv("LD_LIBRARY_PATH", f"/nowhere:{tmp_path / 'lib'}")
    assert tb._triton_missing() is None


def test_python_headers_are_looked_for_in_the_scheme_triton_uses(triton_ready, monkeypatch) -> None:
    tb = triton_ready
    asked = []
    real = tb.sysconfig.get_paths.__call__

    def get_paths(scheme=None):
        asked.append(scheme)
        return real()

    monkeypatch.setattr(tb.sysconfig, "get_paths", get_paths)
    monkeypatch.setattr(tb.sysconfig, "get_default_scheme", lambda: "posix_local")  # Debian
    assert tb._triton_missing() is None
    assert asked == ["posix_prefix"]


class _FakeStream:
    def __init__(self, *args) -> None:
        pass

    def wait_stream(self, other) -> None:
        pass


def _fake_cuda_streams(monkeypatch) -> None:
    import contextlib

    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: _FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())


@pytest.mark.parametrize("fails", [True, False])
def test_cuda_graph_is_kept_only_after_a_successful_thread_local_capture(
    monkeypatch, fails
) -> None:
    import contextlib

    from backends import torch_backend as tb

    # A CUDA-graph session built on CPU tensors, with the CUDA graph API faked: what is
    # checked is the order of capture and assignment, not CUDA itself.
    data = tb._Loaded(preset("toy").replace(epochs=5), torch.device("cpu"), False, "float32")
    session = tb._CudaGraphSession(data)
    _fake_cuda_streams(monkeypatch)
    modes = []

    class FakeGraph:
        replays = 0

        def replay(self) -> None:
            self.replays += 1

    @contextlib.contextmanager
    def graph(g, capture_error_mode="global"):
        modes.append(capture_error_mode)
        yield
        if fails:
            raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    if fails:
        with pytest.raises(RuntimeError, match="capturing"):
            session.warmup()
        assert session.graph is None
    else:
        session.warmup()
        assert isinstance(session.graph, FakeGraph)
        assert session.graph.replays == 1  # the first launch is warm-up work
    assert modes == ["thread_local"]


def test_a_device_torch_has_no_name_for_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match=r"^torch has no device 'tpu'$"):
        torch_backend._device("tpu")
    assert torch_backend._device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_is_unavailable(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"^CUDA is not available: torch.cuda"):
        torch_backend._device("cuda")


@pytest.mark.parametrize("found", ["g++", "c++", "clang++"])
def test_any_cxx_compiler_serves_torch_compile_on_the_cpu(monkeypatch, found) -> None:
    monkeypatch.setattr(torch_backend.shutil, "which", lambda name: name if name == found else None)
    assert torch_backend._compiler_missing() is None


def test_without_a_cxx_compiler_torch_compile_is_unavailable(monkeypatch) -> None:
    monkeypatch.setattr(torch_backend.shutil, "which", lambda name: None)
    reason = "torch.compile on the CPU needs a C++ compiler (g++ or clang++) on PATH"
    assert torch_backend._compiler_missing() == reason
    with pytest.raises(BackendUnavailable, match=r"needs a C\+\+ compiler"):
        torch_backend.TorchCompile("cpu")


def test_triton_takes_the_c_compiler_named_by_cc(monkeypatch, tmp_path) -> None:
    # only $CC exists: neither gcc nor clang
    include = tmp_path / "include"
    include.mkdir()
    (include / "Python.h").write_text("")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torch_backend.importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(
        torch_backend.shutil, "which", lambda name: "/opt/cc/bin/mycc" if name == "mycc" else None
    )
    monkeypatch.setattr(
        torch_backend.sysconfig, "get_paths", lambda scheme=None: {"include": str(include)}
    )
    monkeypatch.setattr(torch_backend.ctypes.util, "find_library", lambda name: "libcuda.so.1")
    monkeypatch.setenv("CC", "mycc")
    assert torch_backend._triton_missing() is None
    monkeypatch.delenv("CC")
    assert "a C compiler ($CC, gcc or clang)" in torch_backend._triton_missing()


def test_the_static_history_is_fetched_as_numpy() -> None:
    w = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    b = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
    w_hist, b_hist = torch_backend._StaticHistory(w, b).stacked()
    np.testing.assert_array_equal(w_hist, [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(b_hist, [0.5, 1.5, 2.5])
    assert w_hist.dtype == b_hist.dtype == np.float64
    assert torch_backend._StaticHistory(None, None).stacked() == (None, None)
    w_only, none = torch_backend._StaticHistory(w, None).stacked()
    assert none is None and w_only.shape == (3, 2)


def test_the_cuda_graph_epoch_body_on_cpu_tensors() -> None:
    # The epoch torch-cudagraph captures, run eagerly on CPU tensors (no CUDA call in
    # it): losses, parameters and the recorded history against the float64 loop by hand.
    from suites.problems import Problem

    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = 2 * x
    p = Problem("tb", x[:, None], y, bias=True, lr=0.02, epochs=5, dtype="float64",
                w0=[0.5], b0=-1.0)  # fmt: skip
    data = torch_backend._Loaded(p, torch.device("cpu"), True, "float32")
    session = torch_backend._CudaGraphSession(data)
    session._reset()
    for _ in range(5):
        session._epoch()
    w, b, losses, ws, bs = 0.5, -1.0, [], [], []
    for _ in range(5):
        r = w * x + b - y
        losses.append(np.mean(r**2))
        w, b = w - 0.02 * np.mean(2 * r * x), b - 0.02 * np.mean(2 * r)
        ws.append(w)
        bs.append(b)
    np.testing.assert_allclose(session.losses.numpy(), losses, rtol=1e-13)
    w_hist, b_hist = session.hist.stacked()
    assert w_hist.dtype == np.float64 and b_hist.dtype == np.float64
    np.testing.assert_allclose(w_hist[:, 0], ws, rtol=1e-13)
    np.testing.assert_allclose(b_hist, bs, rtol=1e-13)
    assert session.w.item() == pytest.approx(ws[-1], rel=1e-13)
    assert session.b.item() == pytest.approx(bs[-1], rel=1e-13)
    assert int(session.index) == 5
    session._reset()  # a round starts again from the initial parameters
    assert (session.w.item(), session.b.item(), int(session.index)) == (0.5, -1.0, 0)
