"""backends/torch_backend.py's small helpers: the device check, the compilers
torch.compile needs, and the CUDA graph's preallocated history (on CPU tensors)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from backends import BackendUnavailable, torch_backend  # noqa: E402


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
