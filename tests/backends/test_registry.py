"""The registry of variants (backends/registry.py): every variant is listed, built on its devices
with its defaults, found by name with a "did you mean" hint, and unavailable only where
its framework is missing."""

from __future__ import annotations

import sys
import types

import pytest

import backends
import backends.registry
from backends import DEVICES, VARIANTS, BackendUnavailable, closest, get_backend, list_backends
from backends.numpy_backend import NumpyBlocked, NumpyManual, mse_gradient


def test_the_public_variants_are_registered_in_order() -> None:
    assert VARIANTS == (
        "numpy-manual", "numpy-blocked", "torch-autograd", "torch-nn", "torch-manual",
        "torch-compile", "torch-cudagraph", "torch-blocked", "jax-grad", "jax-manual",
        "jax-scan", "jax-blocked", "torch-ddp", "torch-allreduce", "jax-sharded",
        "jax-shardmap", "jax-sharded-procs", "jax-shardmap-procs",
    )  # fmt: skip


def test_listing_covers_every_variant_and_device_with_a_reason_when_unavailable() -> None:
    rows = list_backends()
    keys = {(r.variant, r.device) for r in rows}
    cpu_only = ("numpy-manual", "numpy-blocked")
    cpu_and_cuda = {v for v in VARIANTS if v not in (*cpu_only, "torch-cudagraph")}
    expected = (
        {(v, "cpu") for v in cpu_only}
        | {("torch-cudagraph", "cuda")}
        | {(v, d) for v in cpu_and_cuda for d in DEVICES}
    )
    assert keys == expected
    for row in rows:
        assert row.available == (row.reason == "")


def test_an_unknown_variant_names_the_closest_valid_one() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown backend variant 'torch-autgrad' \(did you mean 'torch-autograd'\?\)",
    ):
        get_backend("torch-autgrad")


def test_an_unknown_device_is_a_value_error_listing_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'.*choose from: cpu, cuda"):
        get_backend("jax-scan", "tpu")


def test_numpy_has_no_cuda_variant() -> None:
    with pytest.raises(BackendUnavailable, match="numpy-manual runs on cpu only"):
        get_backend("numpy-manual", "cuda")


def test_the_cuda_graph_variant_has_no_cpu_form() -> None:
    with pytest.raises(BackendUnavailable, match="torch-cudagraph runs on cuda only"):
        get_backend("torch-cudagraph", "cpu")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.startswith("numpy-")])
def test_a_missing_gpu_makes_the_cuda_variant_unavailable_not_an_error(variant: str) -> None:
    try:
        backend = get_backend(variant, "cuda")
    except BackendUnavailable as err:
        assert "CUDA is not available" in str(err) or "not installed" in str(err)
    else:
        assert backend.device == "cuda"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            "Unknown backend: 'gpu' requested, but no platforms that are instances of gpu are "
            "present. Platforms present are: cpu",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform",
        ),
        (
            "Unable to initialize backend 'cuda': FAILED_PRECONDITION: No visible GPU devices.\n"
            "(you may need to uninstall the failing plugin package)",
            "jax's gpu platform failed to initialise: Unable to initialize backend 'cuda': "
            "FAILED_PRECONDITION: No visible GPU devices.",
        ),
    ],
)
def test_jax_says_whether_there_is_no_gpu_or_a_gpu_plugin_that_failed(
    monkeypatch, error, reason
) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    import backends.jax_backend as jax_backend

    def devices(platform=None):
        if platform == "gpu":
            raise RuntimeError(error)
        return jax.local_devices(backend="cpu")

    monkeypatch.setattr(jax_backend.jax, "devices", devices)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("jax-scan", "cuda")
    assert str(info.value).startswith(reason)
    assert "\n" not in str(info.value)
    get_backend("jax-scan", "cpu")  # the CPU variant is unaffected


def test_a_near_miss_names_the_closest_variant() -> None:
    assert closest("jax-scna", VARIANTS) == " (did you mean 'jax-scan'?)"
    assert closest("cdua", ("cpu", "cuda")) == " (did you mean 'cuda'?)"


def test_nothing_close_means_no_hint() -> None:
    assert closest("zzzzzz", VARIANTS) == ""
    assert closest("x", []) == ""


def test_the_hint_cutoff_is_half_similar() -> None:
    # "abcdef" vs "abcxyz": 2·3 matching / 12 characters = 0.5, just at the cutoff, which
    # difflib's default (0.6) would not accept
    assert closest("abcdef", ["abcxyz"]) == " (did you mean 'abcxyz'?)"
    assert closest("abcdef", ["abxyzw"]) == ""  # 4 / 12 = 0.33


def test_block_rows_of_a_blocked_variant_depend_on_the_itemsize() -> None:
    f32 = backends.block_rows_of("numpy-blocked", 16, "float32")
    f64 = backends.block_rows_of("numpy-blocked", 16, "float64")
    # a power of two of rows per block of X: float64 rows are twice as wide
    assert f32 & (f32 - 1) == 0 and f32 >= 2
    assert f64 * 2 == f32
    assert backends.block_rows_of("numpy-blocked", 16, "float64", 7) == 7
    assert backends.block_rows_of("numpy-manual", 16, "float32") is None
    assert backends.block_rows_of("numpy-manual", 16, "float32", 7) is None


def test_precision_settings_come_from_the_loaded_framework_modules(monkeypatch) -> None:
    fake = types.ModuleType("backends.torch_backend")
    fake.precision_settings = lambda: {"float32_matmul_precision": "highest"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backends.torch_backend", fake)
    monkeypatch.delitem(sys.modules, "backends.jax_backend", raising=False)
    assert backends.precision_settings() == {"torch": {"float32_matmul_precision": "highest"}}
    jax_fake = types.ModuleType("backends.jax_backend")
    jax_fake.precision_settings = lambda: {"session_matmul_precision": ["float32"]}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backends.jax_backend", jax_fake)
    assert backends.precision_settings() == {
        "torch": {"float32_matmul_precision": "highest"},
        "jax": {"session_matmul_precision": ["float32"]},
    }
    monkeypatch.delitem(sys.modules, "backends.torch_backend")
    monkeypatch.delitem(sys.modules, "backends.jax_backend")
    assert backends.precision_settings() == {}


@pytest.mark.parametrize(
    ("missing", "unavailable"),
    [("torch", True), ("torch.nn", True), (None, True), ("yaml", False), ("torchvision", False)],
)
def test_only_a_missing_framework_makes_a_variant_unavailable(monkeypatch, missing, unavailable):
    # what `import backends.torch_backend` raises where torch (or something else) is absent
    def broken(name, *args):
        raise ImportError(f"No module named '{missing}'", name=missing)

    monkeypatch.setattr(backends.registry.importlib, "import_module", broken)
    if unavailable:
        with pytest.raises(backends.BackendUnavailable) as info:
            backends.get_backend("torch-nn", "cpu")
        assert str(info.value) == (
            "torch is not installed: pip install 'gdbench[torch]' -c constraints.txt"
        )
    else:  # a broken install of something else is not hidden
        with pytest.raises(ImportError, match=f"'{missing}'"):
            backends.get_backend("torch-nn", "cpu")


@pytest.mark.parametrize("cls", [NumpyManual, NumpyBlocked])
def test_numpy_variants_run_on_the_cpu_by_default(cls) -> None:
    backend = cls()
    assert backend.device == "cpu"
    assert cls("cpu").device == "cpu"
    assert backend.framework == "numpy"


@pytest.mark.parametrize(("cls", "name"), [(NumpyManual, "numpy-manual"),
                                           (NumpyBlocked, "numpy-blocked")])  # fmt: skip
def test_numpy_variants_refuse_cuda_saying_why(cls, name) -> None:
    assert cls.variant == name
    with pytest.raises(BackendUnavailable, match=f"^{name} runs on the CPU only, not on cuda$"):
        cls("cuda")


def test_numpy_defaults() -> None:
    assert NumpyManual().gradient is mse_gradient
    assert NumpyBlocked().block_rows is None
    assert NumpyBlocked(block_rows=64).block_rows == 64


def test_every_listed_row_names_its_framework_available_or_not() -> None:
    rows = list_backends()
    assert {r.variant for r in rows} == set(VARIANTS)
    for r in rows:
        assert r.framework == r.variant.split("-")[0]
        assert r.available == (r.reason == "")
    # on a machine without a GPU the CUDA rows are unavailable, and still name theirs
    unavailable = [r for r in rows if not r.available]
    assert all(r.framework in ("numpy", "torch", "jax") for r in unavailable)


def test_a_session_records_parameters_only_when_asked() -> None:
    from suites.problems import toy_bias

    problem = toy_bias().replace(epochs=3)
    for cls in (NumpyManual, NumpyBlocked):
        plain = cls().prepare(problem).train()
        assert plain.w_history is None and plain.b_history is None
        recorded = cls().prepare(problem, record_params=True).train()
        assert recorded.w_history.shape == (3, 1) and recorded.b_history.shape == (3,)


def test_a_session_trains_in_the_problems_dtype_whatever_it_is_given() -> None:
    import types

    import numpy as np

    # a ProblemSpec that is not a suites.problems.Problem: float64 arrays, float32 asked
    spec = types.SimpleNamespace(
        name="spec", X=np.array([[1.0], [2.0]]), y=np.array([2.0, 4.0]), bias=False,
        lr=0.1, epochs=2, dtype="float32", w0=np.zeros(1), b0=0.0,
    )  # fmt: skip
    session = NumpyManual().prepare(spec)
    assert session.X.dtype == session.y.dtype == np.float32
    result = session.train()
    assert result.losses.dtype == result.w.dtype == np.float32
    # L₁ = mean(y²) = 10; w₁ = 0 + 0.1 · (2/2)·(1·2 + 2·4) = 1; L₂ = mean((x − 2x)²) = 2.5
    np.testing.assert_allclose(result.losses, [10.0, 2.5], rtol=1e-6)


def test_a_diverging_numpy_run_overflows_without_a_warning() -> None:
    import warnings

    import numpy as np

    from suites.problems import toy

    problem = toy().replace(lr=1.0, epochs=300)  # far above the limit 2/15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = NumpyManual().prepare(problem).train()
    assert not np.all(np.isfinite(result.losses))
    assert np.isnan(result.losses[-1])  # inf − inf: the invalid operation is silenced too
