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
    session = backend_or_skip(variant).prepare(problem)
    session.warmup()
    full = session.train()
    short = session.train(epochs=10)
    alone = backend_or_skip(variant).prepare(problem.replace(epochs=10)).train()
    assert short.losses.shape == (10,)
    np.testing.assert_allclose(short.losses, full.losses[:10], rtol=1e-6)
    np.testing.assert_allclose(short.w, alone.w, rtol=1e-6)
    assert short.b == pytest.approx(alone.b, rel=1e-6)
    again = session.train()  # a full round after a short one is a full round
    np.testing.assert_array_equal(again.losses, full.losses)
