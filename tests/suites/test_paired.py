"""Alternating rounds between the contenders of a problem (suites/run/paired.py): the
manager's side with scripted workers whose times are known, one run with real workers,
and what the report makes of the rounds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reports import frame, stats, write
from suites.config import parse
from suites.run import paired, workers
from tests.conftest import gdbench, records
from tests.reports.markdown import section

# A worker that follows the protocol of suites/bench/paired.py with scripted times:
# round i takes SCALE × (1 + NOISE × sin(7.3 i)) seconds (it sleeps that long), and each
# round's label is appended to a log, so the test sees the order in which the manager
# asked.
SCRIPT = """
import json, math, sys, time
label, scale, noise, log, fail = sys.argv[1:6]
scale, noise = float(scale), float(noise)
if fail == "start":
    print(json.dumps({"error": "cannot build the backend"}), flush=True)
    sys.exit(1)
print(json.dumps({"ready": True}), flush=True)
i = 0
for line in sys.stdin:
    if line.strip() != "round":
        break
    i += 1
    with open(log, "a") as fh:
        fh.write(label + "\\n")
    if fail == "round" and i == 3:
        sys.exit(3)
    if fail == "after" and i == 3:  # answers, then is gone before the next round
        print(json.dumps({"s": scale}), flush=True)
        sys.exit(0)
    seconds = scale * (1 + noise * math.sin(7.3 * i))
    time.sleep(seconds)
    print(json.dumps({"s": seconds}), flush=True)
"""


def contest(*labels: str) -> paired.Contest:
    return paired.Contest("toy", "float32", 4, 1, 100, [(v, "cpu", 10) for v in labels])


def scripted(tmp_path: Path, behaviour: dict[int, tuple[float, float, str]]):  # noqa: ANN201
    """A start_worker for settle: contender i gets (scale, noise, fail) from behaviour."""
    log = tmp_path / "order.log"

    def start(index: int) -> subprocess.Popen:
        scale, noise, fail = behaviour[index]
        return subprocess.Popen(
            [sys.executable, "-c", SCRIPT, f"w{index}", str(scale), str(noise), str(log), fail],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    return start, log


def test_a_slower_contender_is_decided_in_alternating_rounds(tmp_path: Path) -> None:
    # w1 is 5% slower, each with 2% noise in opposite phase: ratios 1.05 ± 4%, decided
    # at the first look (10 pairs) or the next
    start, log = scripted(tmp_path, {0: (1e-3, 0.02, ""), 1: (1.05e-3, -0.02, "")})
    rec = paired.settle(contest("a", "b"), start, 30.0, 10.0, lambda: False)
    assert rec["stop"] == "decided" and rec["errors"] == {}
    first, second = rec["rounds"]["a@cpu"], rec["rounds"]["b@cpu"]
    assert len(first) == len(second) and len(first) in stats.LOOKS
    # alternating: A B, then B A, then A B ... (each pair's order reversed the next time)
    order = log.read_text().split()
    assert order[:6] == ["w0", "w1", "w1", "w0", "w0", "w1"]
    verdict = stats.paired_ratio(second, first)
    assert verdict.outcome == stats.SLOWER and verdict.low > 1.0


def test_identical_contenders_stop_early_as_equivalent(tmp_path: Path) -> None:
    # the same times round for round: every ratio is 1, equal within 1% at the first look
    start, _ = scripted(tmp_path, {0: (1e-3, 0.2, ""), 1: (1e-3, 0.2, "")})
    rec = paired.settle(contest("a", "b"), start, 30.0, 10.0, lambda: False)
    assert rec["stop"] == "decided" and len(rec["rounds"]["a@cpu"]) == stats.LOOKS[0]
    assert frame.paired_frame([rec | {"machine": "m"}])["outcome"].tolist() == [
        "fastest",
        stats.EQUIVALENT_OUTCOME,
    ]


def test_undecided_contenders_stop_when_the_budget_is_spent(tmp_path: Path) -> None:
    # 20% noise, opposite in the two: 20 ms rounds, 1 s of budget, no answer in time
    start, _ = scripted(tmp_path, {0: (2e-2, 0.2, ""), 1: (2e-2, -0.2, ""), 2: (2e-2, -0.2, "")})
    rec = paired.settle(contest("a", "b", "c"), start, 1.0, 10.0, lambda: False)
    assert rec["stop"] == "budget spent"
    assert 1.0 <= rec["spent_s"] < 1.0 + 5.0  # the last cycle, and the workers' stop
    # every contender still undecided took every cycle's round, fewer than 1 s allows
    assert len(set(map(len, rec["rounds"].values()))) == 1
    assert 1 <= len(rec["rounds"]["a@cpu"]) <= 1.0 / (3 * 2e-2 * 0.8)


def test_contenders_out_of_pairs_are_not_called_decided(tmp_path: Path) -> None:
    start, _ = scripted(tmp_path, {0: (1e-4, 0.2, ""), 1: (1e-4, -0.2, "")})
    rec = paired.settle(contest("a", "b"), start, 60.0, 10.0, lambda: False)
    assert rec["stop"] == "pairs exhausted" and len(rec["rounds"]["a@cpu"]) == stats.MAX_PAIRS


def test_a_worker_that_cannot_start_leaves_the_planned_rounds_standing(tmp_path: Path) -> None:
    start, _ = scripted(tmp_path, {0: (1e-3, 0.0, ""), 1: (1e-3, 0.0, "start")})
    rec = paired.settle(contest("a", "b"), start, 5.0, 10.0, lambda: False)
    assert rec["stop"] == "fewer than two contenders ready"
    assert rec["errors"] == {"b@cpu": "cannot build the backend"}
    assert frame.paired_frame([rec | {"machine": "m"}]).empty  # nothing to judge by


@pytest.mark.parametrize(
    ("fail", "error", "cycles"),
    [
        ("round", "exited with status 3", 2),  # dies in its third round, answering nothing
        ("after", "exited with status", 3),  # answers its third round, then is gone
    ],
)
def test_a_worker_that_dies_ends_the_contest_and_says_so(
    tmp_path: Path, fail: str, error: str, cycles: int
) -> None:
    start, _ = scripted(tmp_path, {0: (1e-3, 0.0, ""), 1: (1.5e-3, 0.0, fail)})
    rec = paired.settle(contest("a", "b"), start, 5.0, 10.0, lambda: False)
    assert rec["stop"] == "b@cpu failed"
    assert rec["errors"]["b@cpu"].startswith(error)
    assert len(rec["rounds"]["a@cpu"]) == len(rec["rounds"]["b@cpu"]) == cycles


def test_a_worker_not_ready_in_time_is_ended_at_once(tmp_path: Path) -> None:
    # w1 answers nothing for 30 s: given up at the set-up deadline (1 s), never waited for
    slow = SCRIPT.replace('if fail == "start":', 'if fail == "sleep":\n    time.sleep(30)\nif 0:')
    log = tmp_path / "order.log"

    def start(index: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", slow, f"w{index}", "1e-3", "0", str(log),
             "sleep" if index else ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    began = time.monotonic()
    rec = paired.settle(contest("a", "b"), start, 1.0, 60.0, lambda: False)
    assert time.monotonic() - began < 10
    assert rec["stop"] == "fewer than two contenders ready"
    assert "no answer within" in rec["errors"]["b@cpu"]


def test_a_stop_signal_ends_the_contest_at_once(tmp_path: Path) -> None:
    start, _ = scripted(tmp_path, {0: (1e-3, 0.0, ""), 1: (1e-3, 0.0, "")})
    rec = paired.settle(contest("a", "b"), start, 30.0, 10.0, lambda: True)
    assert rec["stop"] == "run stopped" and rec["rounds"] == {"a@cpu": [], "b@cpu": []}


def test_real_workers_time_two_variants_of_one_problem(tmp_path: Path) -> None:
    cfg = parse(quick=True, backends="numpy-manual", problems="toy")
    race = paired.Contest("toy", "float32", 4, 1, 100,
                          [("numpy-manual", "cpu", 20), ("numpy-blocked", "cpu", 20)])  # fmt: skip

    def start(index: int) -> subprocess.Popen:
        return subprocess.Popen(paired.worker_command(cfg, race, index), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip

    rec = paired.settle(race, start, 20.0, 60.0, lambda: False)
    assert rec["errors"] == {} and rec["stop"] in ("decided", "budget spent")
    rounds = rec["rounds"]
    assert len(rounds["numpy-manual@cpu"]) == len(rounds["numpy-blocked@cpu"]) >= stats.LOOKS[0]
    # seconds per training of 100 epochs on 4 rows: microseconds, not nothing
    assert all(1e-6 < t < 0.1 for times in rounds.values() for t in times)


def test_a_worker_whose_variant_does_not_agree_refuses_to_be_timed() -> None:
    # lr far above toy's stability limit (2/15): the first training diverges
    cfg = parse(quick=True, backends="numpy-manual", problems="toy", lr="1.0")
    race = paired.Contest("toy", "float32", 4, 1, 100, [("numpy-manual", "cpu", 1)])
    proc = subprocess.run(paired.worker_command(cfg, race, 0), capture_output=True, text=True,
                          input="round\n", timeout=60)  # fmt: skip
    answer = json.loads(proc.stdout.splitlines()[0])
    assert proc.returncode == 1 and "does not agree with the reference" in answer["error"]


# --- what the report makes of the rounds ---------------------------------------------


def duel(a: list[float], b: list[float]) -> dict:
    return {"kind": "paired", "machine": "m", "problem": "synthetic-100x16", "dtype": "float32",
            "n_samples": 100, "n_features": 16, "epochs": 100, "leader": "numpy-manual@cpu",
            "rounds": {"numpy-manual@cpu": a, "jax-scan@cpu": b}, "stop": "decided",
            "budget_s": 5.0, "spent_s": 1.0}  # fmt: skip


def test_paired_rounds_name_the_winner_and_the_ratio_from_neighbouring_rounds() -> None:
    rng = np.random.default_rng(3)
    drift = np.linspace(1.0, 3.0, 32)  # the machine slows down threefold during the rounds
    base = drift * rng.lognormal(0.0, 0.01, 32)
    rows = frame.paired_frame([duel(list(1.05e-3 * base), list(1e-3 * drift))])
    jax = rows.set_index("variant").loc["jax-scan"]
    numpy_row = rows.set_index("variant").loc["numpy-manual"]
    assert jax["outcome"] == "fastest" and jax["versus"] == "jax-scan@cpu"
    # the drift cancels in each pair: 1.05 within a few percent, decided
    assert numpy_row["outcome"] == stats.SLOWER
    assert 1.0 < numpy_row["ratio_ci_low"] <= 1.05 <= numpy_row["ratio_ci_high"] < 1.1
    # unpaired, the same rounds could not tell them apart
    low, high = stats.ratio_interval([list(1.05e-3 * base)], [list(1e-3 * drift)])
    assert low < 1 < high


A = Path(__file__).parents[1] / "fixtures" / "machine_a.json"


def with_duel(tmp_path: Path, a: list[float], b: list[float], *also: str) -> Path:
    """machine_a.json with rounds that tie numpy-manual and jax-scan (and ``also``) on
    synthetic 100×16, and a paired record between the first two."""
    doc = json.loads(A.read_text())
    tied = ("numpy-manual", "jax-scan", *also)
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        if info.get("problem") == "synthetic-100x16" and info["variant"] in tied:
            bench["stats"]["data"] = list(np.linspace(0.9e-3, 1.1e-3, 11))
            bench["stats"]["median"] = 1e-3
    record = duel(a, b)
    del record["machine"]
    doc["gdbench"]["paired"] = [record]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_contender_decidedly_faster_than_the_leader_wins() -> None:
    # the leader (planned fastest) numpy-manual is 10% slower in every pair: jax-scan wins,
    # and numpy-manual's ratio is taken against it
    ones = np.ones(16)
    rows = frame.paired_frame([duel(list(1.1e-3 * ones), list(1e-3 * ones))])
    by_variant = rows.set_index("variant")
    assert by_variant.loc["jax-scan", "outcome"] == "fastest"
    assert by_variant.loc["numpy-manual", "outcome"] == stats.SLOWER
    assert by_variant.loc["numpy-manual", "ratio"] == pytest.approx(1.1)
    # three contenders: the one decided slower than the leader stays slower, whatever the
    # medians of the cycles it did not take part in
    rec = duel(list(1e-3 * ones), list(1e-3 * ones)) | {"leader": "numpy-manual@cpu"}
    rec["rounds"]["torch-nn@cpu"] = list(1.3e-3 * np.ones(10))  # decided at the first look
    rows = frame.paired_frame([rec]).set_index("variant")
    assert rows.loc["numpy-manual", "outcome"] == "fastest"
    assert rows.loc["torch-nn", "outcome"] == stats.SLOWER
    assert rows.loc["jax-scan", "outcome"] == stats.EQUIVALENT_OUTCOME


def test_the_report_names_the_paired_winner_or_says_not_distinguishable(tmp_path: Path) -> None:
    ones = np.ones(16)
    decided = frame.load([with_duel(tmp_path, list(1.1e-3 * ones), list(1e-3 * ones))])
    rows = decided.results[decided.results["problem"] == "synthetic-100x16"].set_index("variant")
    assert rows.loc["jax-scan", "fastest"] == "yes" and rows.loc["numpy-manual", "fastest"] == ""
    assert rows.loc["numpy-manual", "gap_to_fastest"] == pytest.approx(1.1)
    assert rows.loc["torch-nn", "gap_to_fastest"] == pytest.approx(40e-6 / 10e-6)

    noise = np.tile([0.98, 1.02], 8)  # equal, each pair ±2% either way
    even = frame.load([with_duel(tmp_path, list(1e-3 * noise), list(1e-3 * noise[::-1]))])
    rows = even.results[even.results["problem"] == "synthetic-100x16"].set_index("variant")
    assert set(rows.loc[["jax-scan", "numpy-manual"], "fastest"]) == {"tie"}
    text = section(write.markdown_report(even), "Summary")
    note = next(x for x in text.splitlines() if x.startswith("- **synthetic 100×16**"))
    assert "not distinguishable here (16 alternating pairs of rounds; a 99.3% interval" in note


def test_the_manager_settles_a_tie_left_by_the_planned_rounds(tmp_path: Path) -> None:
    # a real quick run of two variants with no alternating rounds (--budget 0); then the
    # planned rounds made a tie (the same rounds for both), and the manager settles it
    out = tmp_path / "run"
    proc = gdbench("run", "--quick", "--problems", "toy", "--backends",
                   "numpy-manual,numpy-blocked", "--budget", "0", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[paired]" not in proc.stdout
    path = out / "records.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    timed = [r for r in lines if r["kind"] == "benchmark"]
    assert [r["variant"] for r in timed] == ["numpy-manual", "numpy-blocked"]
    timed[1]["timing"] = timed[0]["timing"]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    (race,) = paired.contests(path)
    assert [c[0] for c in race.contenders] == ["numpy-manual", "numpy-blocked"]
    cfg = parse(quick=True, backends="numpy-manual,numpy-blocked", problems="toy")
    manager = workers.Manager(cfg, out, timing=True, timeout=60.0, isolate="variant",
                              processes=1, budget=10.0)  # fmt: skip
    manager._settle(2)
    (rec,) = [r for r in records(out) if r["kind"] == "paired"]
    assert rec["problem"] == "toy" and rec["errors"] == {}
    assert rec["stop"] in ("decided", "budget spent", "pairs exhausted")
    assert len(rec["rounds"]["numpy-manual@cpu"]) >= stats.LOOKS[0]
    log = (out / "workers" / "03-paired-toy.log").read_text()
    assert "suites.bench.paired" in log  # the command, to re-run by hand


def test_a_paired_winner_is_no_winner_while_a_variant_outside_the_contest_ties(
    tmp_path: Path,
) -> None:
    # torch-nn ties in the planned rounds too but took no part in the alternating ones
    # (as a fourth contender, or one whose worker did not start): no bold winner
    ones = np.ones(16)
    frames = frame.load([with_duel(tmp_path, list(1.1e-3 * ones), list(1e-3 * ones), "torch-nn")])
    rows = frames.results[frames.results["problem"] == "synthetic-100x16"].set_index("variant")
    assert rows.loc["jax-scan", "fastest"] == "tie" and rows.loc["torch-nn", "fastest"] == "tie"
    assert rows.loc["numpy-manual", "fastest"] == ""
