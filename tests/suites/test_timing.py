"""The cost model recovers a per-run fixed cost and a per-epoch cost from two epoch counts."""

from __future__ import annotations

import pytest

from suites.bench.timing import cost_model, fit_cost, short_epochs


class FakeSession:
    """A session whose every run costs exactly ``fixed + epochs × marginal`` seconds of
    a clock of its own (no real time is measured)."""

    def __init__(self, fixed: float, marginal: float, epochs: int) -> None:
        self.fixed, self.marginal, self.epochs = fixed, marginal, epochs
        self.now = 0.0
        self.runs: list[int] = []

    def clock(self) -> float:
        return self.now

    def train(self, epochs: int | None = None) -> None:
        count = epochs or self.epochs
        self.runs.append(count)
        self.now += self.fixed + count * self.marginal


@pytest.mark.parametrize(("fixed", "marginal"), [(30e-6, 25e-9), (0.0, 2e-3), (1e-3, 0.0)])
def test_the_model_recovers_fixed_and_marginal_cost_of_an_exact_session(fixed, marginal) -> None:
    session = FakeSession(fixed, marginal, epochs=100)
    cost = cost_model(session.train, 100, 0.0, timer=session.clock)
    assert cost["cost_epochs"] == [25, 100]
    assert cost["fixed_s"] == pytest.approx(fixed, abs=1e-12)
    assert cost["marginal_epoch_s"] == pytest.approx(marginal, abs=1e-15)
    assert set(session.runs) == {25, 100}


def test_the_two_epoch_counts_are_timed_in_alternating_rounds() -> None:
    session = FakeSession(1e-3, 1e-5, epochs=400)
    cost_model(session.train, 400, 0.0, timer=session.clock)
    timed = session.runs[session.runs.index(400, 2) :]  # after compiling and calibrating
    switches = sum(a != b for a, b in zip(timed, timed[1:], strict=False))
    assert set(timed) == {100, 400} and switches >= 2 * 5 - 1  # ≥ 5 rounds each, ABAB


def test_per_epoch_cost_depends_on_the_epoch_count_but_the_marginal_cost_does_not() -> None:
    # What the issue saw with jax-scan: the same data at 100 and 4000 epochs. time/epochs
    # differs tenfold; the model's marginal cost is the same at both.
    fixed, marginal = 30e-6, 25e-9
    naive, fitted = [], []
    for epochs in (100, 4000):
        session = FakeSession(fixed, marginal, epochs)
        cost = cost_model(session.train, epochs, 0.0, timer=session.clock)
        naive.append((fixed + epochs * marginal) / epochs)
        fitted.append(cost["marginal_epoch_s"])
    assert naive[0] / naive[1] > 9
    assert fitted[0] == pytest.approx(fitted[1], rel=1e-9)


def test_runs_too_short_to_split_have_no_model() -> None:
    assert short_epochs(3) is None
    assert cost_model(FakeSession(1, 1, 3).train, 3, 0.0) == {}


def test_the_fit_is_least_squares_through_several_points() -> None:
    points = [(e, 2.0 + 0.5 * e) for e in (1, 10, 100, 1000)]
    assert fit_cost(points) == pytest.approx((2.0, 0.5))


@pytest.mark.parametrize("round_s", [1e-7, 3e-6, 1e-4, 0.02, 2.0])
@pytest.mark.parametrize("overhead_s", [0.0, 1e-7, 2e-6])
def test_iterations_keep_the_harness_below_its_share_and_are_the_fewest_that_do(
    round_s, overhead_s
) -> None:
    from suites.bench.timing import MAX_ITERATIONS, SIZING_SHARE, iterations_for

    k = iterations_for(round_s, overhead_s)
    assert 1 <= k <= MAX_ITERATIONS
    if k < MAX_ITERATIONS:
        assert overhead_s <= SIZING_SHARE * k * round_s * (1 + 1e-12)
    if k > 1:  # one fewer would not do
        assert overhead_s > SIZING_SHARE * (k - 1) * round_s


@pytest.mark.parametrize("quick", [False, True])
def test_rounds_fill_the_budget_within_their_bounds(quick) -> None:
    from suites.bench.timing import (
        MAX_ROUNDS,
        MIN_ROUNDS,
        QUICK_CASE_S,
        QUICK_FEWEST,
        ROUND_BUDGET_S,
        rounds_for,
    )

    # a slow round: the minimum (--quick: fewer where the minimum would take over 1 s)
    assert rounds_for(10.0, quick) == (QUICK_FEWEST if quick else MIN_ROUNDS[quick])
    assert rounds_for(QUICK_CASE_S / MIN_ROUNDS[quick], quick) == MIN_ROUNDS[quick]
    if quick:  # 0.125 s a round: 8 rounds fill the second
        assert rounds_for(QUICK_CASE_S / 8, quick) == 8
    assert rounds_for(1e-9, quick) == MAX_ROUNDS  # a tiny one: the cap
    budget = ROUND_BUDGET_S[quick]
    middle = budget / 20
    assert rounds_for(middle, quick) == max(MIN_ROUNDS[quick], 20)
