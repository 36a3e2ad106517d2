"""jax-specific promises: no host-to-device copy in a round, a warm-up that executes, a
sync that waits on the device, the matmul precision every trace runs under, and
backends/jax_backend.py's words for a missing device."""

from __future__ import annotations

import re

import pytest

jax = pytest.importorskip("jax", reason="jax is not installed")

from backends import BackendUnavailable, jax_backend  # noqa: E402
from suites.convergence import compare  # noqa: E402
from suites.problems import preset, synthetic, toy  # noqa: E402
from tests.conftest import backend_or_skip  # noqa: E402

JAX_VARIANTS = ("jax-grad", "jax-manual", "jax-scan", "jax-blocked")


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("variant", JAX_VARIANTS)
def test_jax_rounds_copy_nothing_from_the_host(variant, record) -> None:
    # An epoch index sent from Python, or a buffer filled from a host value, is a
    # host-to-device copy in every round (every epoch, for the index) on a GPU.
    problem = preset("toy-bias").replace(epochs=30)
    session = backend_or_skip(variant).prepare(problem, record_params=record)
    session.warmup()
    with jax.transfer_guard_host_to_device("disallow"):
        results = [session.train() for _ in range(2)]
    assert all(compare(problem, r).ok for r in results)


@pytest.fixture
def compiled_calls(monkeypatch):
    """The argument counts of every call of a compiled jax executable."""
    calls: list[int] = []
    real = jax.stages.Compiled.__call__

    def counting(self, *args, **kwargs):
        calls.append(len(args))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jax.stages.Compiled, "__call__", counting)
    return calls


@pytest.mark.parametrize("variant", JAX_VARIANTS)
def test_jax_warmup_executes_the_training_code_once(variant, compiled_calls) -> None:
    # torch's warm-up runs epochs; jax's must execute too, so that first-execution work
    # (loading kernels onto a GPU) is in compile_s for every framework alike.
    session = backend_or_skip(variant).prepare(synthetic(64, 3, epochs=5))
    session.warmup()
    assert any(n >= 3 for n in compiled_calls), compiled_calls  # (params, X, y, ...)


@pytest.mark.parametrize("variant", JAX_VARIANTS)
def test_jax_sync_runs_work_on_the_device(variant, compiled_calls) -> None:
    # Waiting on an array that is already ready measures nothing: the harness times
    # sync() as the cost of a device round-trip.
    session = backend_or_skip(variant).prepare(preset("toy"))
    session.warmup()
    compiled_calls.clear()
    session.sync()
    session.sync()
    assert len(compiled_calls) == 2


@pytest.mark.parametrize(
    ("precision", "hlo"), [("float32", "HIGHEST"), ("tf32", "HIGH"), ("tf32 asked", "HIGHEST")]
)
def test_jax_traces_every_matmul_at_the_asked_precision(precision, hlo) -> None:
    # jax's own default lets a GPU compute float32 products in TF32; gdbench asks for
    # full float32 unless told otherwise. The precision is part of the traced program.
    # "tf32" is what a CUDA session traces with (its _Loaded built here on the CPU);
    # "tf32 asked" of a CPU backend stays full float32.
    from backends import get_backend, jax_backend

    for variant in JAX_VARIANTS:
        backend = get_backend(variant, "cpu", matmul_precision=precision.split()[0])
        session = backend.prepare(synthetic(32, 3, epochs=3))
        if precision == "tf32":
            session.d = jax_backend._Loaded(session.d.p, session.d.device, False, "tf32")
        d = session.d
        with d.precision():
            if variant in ("jax-scan", "jax-blocked"):  # the whole loop compiled once
                text = session._fit.lower(d.params0, d.X, d.y, epochs=3).as_text()
            else:
                losses, hist, e = session._fresh()
                text = session._epoch.lower(d.params0, d.X, d.y, losses, hist, e).as_text()
        dots = [line for line in text.splitlines() if "dot_general" in line]
        assert dots, variant
        for line in dots:
            assert re.search(r"precision = \[(\w+), (\w+)\]", line).groups() == (hlo, hlo)


@pytest.mark.parametrize(
    ("platform", "message", "reason"),
    [
        (
            "gpu",
            "Backend 'gpu' failed to initialize: no platforms that are instances of gpu are "
            "present\nsecond line",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform "
            "(install jax[cuda12] on a machine with an NVIDIA GPU)",
        ),
        (
            "gpu",
            "Unknown backend gpu",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform "
            "(install jax[cuda12] on a machine with an NVIDIA GPU)",
        ),
        (
            "gpu",
            "  cuda plugin crashed\nstack",
            "jax's gpu platform failed to initialise: cuda plugin crashed",
        ),  # fmt: skip
        # on the CPU the same words are jax's own failure, not a missing GPU
        (
            "cpu",
            "Unknown backend cpu",
            "jax's cpu platform failed to initialise: Unknown backend cpu",
        ),  # fmt: skip
        ("gpu", "", "jax's gpu platform failed to initialise: RuntimeError"),
    ],
)
def test_device_errors_keep_jaxs_first_line(platform, message, reason) -> None:
    assert jax_backend.device_error(platform, RuntimeError(message)) == reason


def test_a_device_jax_has_no_name_for_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match=r"^jax has no device 'tpu'$"):
        jax_backend._jax_device("tpu")
    assert jax_backend._jax_device("cpu").platform == "cpu"


def test_the_precision_record_has_jaxs_global_default(monkeypatch) -> None:
    jax_backend.JaxGrad("cpu").prepare(toy())  # a session traces at full float32
    old = jax.config.jax_default_matmul_precision
    try:
        jax.config.update("jax_default_matmul_precision", "highest")
        settings = jax_backend.precision_settings()
    finally:
        jax.config.update("jax_default_matmul_precision", old)
    assert settings["default_matmul_precision"] == "highest"
    assert "float32" in settings["session_matmul_precision"]
    assert settings["session_matmul_precision"] == sorted(settings["session_matmul_precision"])
    assert set(settings) == {"session_matmul_precision", "default_matmul_precision"}
