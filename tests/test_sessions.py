"""What every session promises the harness: ``train(epochs=k)`` is the first k epochs of
the run (the cost model times two epoch counts), and rounds carry no state."""

from __future__ import annotations

import numpy as np
import pytest

from backends import VARIANTS, devices_of
from suites.problems import preset
from tests.conftest import backend_or_skip


@pytest.mark.parametrize("variant", [v for v in VARIANTS if "cpu" in devices_of(v)])
def test_a_shorter_round_is_the_first_epochs_of_the_run(variant) -> None:
    problem = preset("toy-bias").replace(epochs=40)
    # trained first: a data-parallel torch session ends when another one starts
    alone = backend_or_skip(variant).prepare(problem.replace(epochs=10)).train()
    session = backend_or_skip(variant).prepare(problem)
    session.warmup()
    full = session.train()
    short = session.train(epochs=10)
    assert short.losses.shape == (10,)
    np.testing.assert_allclose(short.losses, full.losses[:10], rtol=1e-6)
    np.testing.assert_allclose(short.w, alone.w, rtol=1e-6)
    assert short.b == pytest.approx(alone.b, rel=1e-6)
    again = session.train()  # a full round after a short one is a full round
    np.testing.assert_array_equal(again.losses, full.losses)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if "cpu" in devices_of(v)])
def test_every_variant_starts_from_the_problems_initial_parameters(variant) -> None:
    # The README: "the same initial parameters (zeros unless the problem says
    # otherwise)". A backend that starts from zeros regardless fails here.
    from suites.convergence import compare

    base = preset("toy-bias").replace(epochs=50)
    problem = base.replace(w0=np.array([0.7], dtype=np.float32), b0=-0.3)
    X, y = np.asarray(problem.X, np.float64), np.asarray(problem.y, np.float64)
    first_loss = np.mean((X @ [0.7] - 0.3 - y) ** 2)  # by hand, not from the reference
    result = backend_or_skip(variant).prepare(problem).train()
    assert result.losses[0] == pytest.approx(first_loss, rel=1e-5)
    assert result.losses[0] != pytest.approx(np.mean(y**2), rel=1e-3)
    assert compare(problem, result).ok
