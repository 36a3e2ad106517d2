"""Does a backend's run agree with the float64 reference? One verdict per run.

The loss of every epoch is compared, not only the last: two implementations that land
on the same optimum by different paths (say, a gradient N times too large with a small
learning rate) are not doing the same computation.

Tolerances, per dtype (``TOLERANCES``), with the test

    |L_e − L_ref,e|  ≤  rtol · max(|L_ref,e|, floor · L_ref,1)     for every epoch e

- float32: rtol = 1e-3, floor = 1e-2. Rounding X, y and the residual to float32 costs
  a few ε₃₂ = 1.2e-7 per epoch, and the N-term sums add about log₂N·ε (BLAS sums
  blockwise); gradient descent damps the error it carries from one epoch to the next.
  Measured deviations are ≤ 3e-5 relative, so 1e-3 keeps a 30× margin while any
  gradient error of 0.1% or more fails. Near the optimum the loss falls to the level of
  float32 rounding itself (toy reaches 1e-13 from L₁ = 30): the residual rᵢ carries an
  absolute error ≈ ε·|yᵢ|, so the loss cannot be compared more finely than about
  ε·L₁; the floor 1e-2 · L₁ · rtol = 1e-5 · L₁ (80 ε·L₁) is where relative comparison
  stops. Measured: ≤ 2.2e-7 · L₁.
- float64: rtol = 1e-9, floor = 1e-3 (the same reasoning with ε₆₄ = 2.2e-16; jax's
  and BLAS's summation orders give ≤ 1e-13 relative).
- float32 with ``--matmul-precision tf32`` (GPUs with tensor cores): rtol = 2e-2,
  floor = 1e-2, ptol = 2e-3. TF32 rounds the inputs of every product to a 10-bit
  mantissa (ε = 4.9e-4) and accumulates in float32. Measured by emulating exactly that
  in NumPy (X, w and r rounded to TF32 before each product) on every preset and the
  100 / 10 000 / 1 000 000 × 16 sweep: loss within 4.9e-3 and parameters within
  2.4e-4 of the float64 reference, so the tolerance keeps a 4× and 8× margin; a 1%
  gradient error (5e-2) still fails, a 0.1% one may not.

Parameters are compared after the last epoch: max|θ − θ_ref| ≤ ptol · max(1, max|θ_ref|),
ptol = 1e-4 for float32 (measured ≤ 3e-6) and 1e-9 for float64. The distance to the
least-squares optimum is reported (``optimum_dev``) where the reference has reached it,
but it is not a check of its own: by the triangle inequality it is at most
param_dev + the reference's own distance, so once the parameter check passes it cannot
fail (an earlier version had such a check; no run could ever trip it). The optimum
checks the reference instead (tests/suites/test_problems.py).

A run diverges when its loss becomes non-finite or rises above its first value: for a
quadratic loss and a learning rate below the stability limit 2/λ_max, gradient descent
never increases the loss, so that is proof the step is too large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends import TrainResult
from suites.problems import Problem


@dataclass(frozen=True)
class Tolerance:
    """Agreement thresholds for one dtype (see the module docstring for why)."""

    rtol: float  # relative deviation allowed in each epoch's loss
    floor: float  # below floor · L₁ losses are compared absolutely
    ptol: float  # relative deviation allowed in the final parameters


TOLERANCES = {
    "float32": Tolerance(rtol=1e-3, floor=1e-2, ptol=1e-4),
    "float64": Tolerance(rtol=1e-9, floor=1e-3, ptol=1e-9),
}
TF32_TOLERANCE = Tolerance(rtol=2e-2, floor=1e-2, ptol=2e-3)


def tolerance(dtype: str, matmul_precision: str = "float32") -> Tolerance:
    """The thresholds for a run in ``dtype`` whose float32 products use
    ``matmul_precision`` (float64 products are full precision whatever it says)."""
    if dtype == "float32" and matmul_precision == "tf32":
        return TF32_TOLERANCE
    return TOLERANCES[dtype]


AGREE, DISAGREE, DIVERGED = "agree", "disagree", "diverged"


@dataclass(frozen=True)
class Verdict:
    """How one run compares with the float64 reference.

    Attributes:
        status: ``"agree"``, ``"disagree"`` or ``"diverged"``.
        epoch: 1-based; the epoch the run diverged at, or the first epoch whose loss left
            the tolerance; ``None`` when it agrees.
        max_loss_dev: max over epochs of |L − L_ref| / max(|L_ref|, floor·L₁): the
            largest relative deviation of the loss, to compare with ``rtol``.
        param_dev: max|θ − θ_ref| / max(1, max|θ_ref|) after the last epoch.
        optimum_dev: the same distance to the least-squares optimum, or ``None`` when the
            reference has not reached it within the run's epochs.
        message: one line for a person.
        rtol: the loss tolerance the run was judged by (its dtype's, or TF32's).
    """

    status: str
    epoch: int | None
    max_loss_dev: float
    param_dev: float
    optimum_dev: float | None
    message: str
    rtol: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == AGREE


def divergence_epoch(losses: np.ndarray) -> int | None:
    """The first 1-based epoch whose loss is non-finite or above the first loss, or None."""
    losses = np.asarray(losses, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > losses[0] * (1 + 1e-6))
    if not np.isfinite(losses[0]):
        return 1
    hits = np.flatnonzero(bad)
    return int(hits[0]) + 1 if hits.size else None


def _params(w: np.ndarray, b: float | None) -> np.ndarray:
    return np.append(np.asarray(w, dtype=np.float64).reshape(-1), 0.0 if b is None else b)


def compare(problem: Problem, result: TrainResult, matmul_precision: str = "float32") -> Verdict:
    """Judge ``result`` against ``problem``'s float64 reference, with the tolerance of its
    dtype and matmul precision; the distance to the least-squares optimum is reported."""
    tol = tolerance(problem.dtype, matmul_precision)
    ref = problem.reference
    losses = np.asarray(result.losses, dtype=np.float64)
    if losses.shape != ref.losses.shape:
        return Verdict(
            DISAGREE,
            1,
            np.inf,
            np.inf,
            None,
            f"returned {losses.shape[0]} losses for {ref.losses.shape[0]} epochs",
            tol.rtol,
        )

    ref_div = divergence_epoch(ref.losses)
    run_div = divergence_epoch(losses)
    if ref_div is not None or run_div is not None:
        if run_div is None:
            msg = f"reference diverged at epoch {ref_div} but this run did not"
            return Verdict(DISAGREE, ref_div, np.inf, np.inf, None, msg, tol.rtol)
        msg = f"diverged at epoch {run_div}"
        if ref_div is None:
            msg += " (the float64 reference did not: a backend error)"
            return Verdict(DISAGREE, run_div, np.inf, np.inf, None, msg, tol.rtol)
        limit = problem.lr_limit
        msg += f" (lr={problem.lr:g} is above the stability limit {limit:.4g})"
        return Verdict(DIVERGED, run_div, np.inf, np.inf, None, msg, tol.rtol)

    scale = np.maximum(np.abs(ref.losses), tol.floor * abs(ref.losses[0]))
    dev = np.abs(losses - ref.losses) / scale
    max_loss_dev = float(np.max(dev))

    ref_theta = _params(ref.w, ref.b if problem.bias else None)
    theta = _params(result.w, result.b if problem.bias else None)
    pscale = max(1.0, float(np.max(np.abs(ref_theta))))
    param_dev = float(np.max(np.abs(theta - ref_theta)) / pscale)

    w_opt, b_opt = problem.optimum
    opt_theta = _params(w_opt, b_opt if problem.bias else None)
    ref_to_opt = float(np.max(np.abs(ref_theta - opt_theta)) / pscale)
    # Reported where the float64 run has reached the optimum; never judged (see above).
    optimum_dev = None
    if ref_to_opt <= tol.ptol / 10:
        optimum_dev = float(np.max(np.abs(theta - opt_theta)) / pscale)

    if max_loss_dev > tol.rtol:
        first = int(np.flatnonzero(dev > tol.rtol)[0]) + 1
        msg = (
            f"loss left the reference at epoch {first}: {losses[first - 1]:.6g} vs "
            f"{ref.losses[first - 1]:.6g} (relative deviation {dev[first - 1]:.2e} > "
            f"rtol {tol.rtol:g})"
        )
        return Verdict(DISAGREE, first, max_loss_dev, param_dev, optimum_dev, msg, tol.rtol)
    if param_dev > tol.ptol:
        msg = f"final parameters off the reference by {param_dev:.2e} > ptol {tol.ptol:g}"
        return Verdict(
            DISAGREE, problem.epochs, max_loss_dev, param_dev, optimum_dev, msg, tol.rtol
        )
    msg = (
        f"agrees: loss within {max_loss_dev:.1e} (rtol {tol.rtol:g}), params within {param_dev:.1e}"
    )
    return Verdict(AGREE, None, max_loss_dev, param_dev, optimum_dev, msg, tol.rtol)
