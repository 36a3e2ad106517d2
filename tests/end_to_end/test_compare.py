"""``gdbench compare BASE NEW``, run as a user would: verdicts, exit status, bad input.

tests/fixtures/compare/base.json (machine "alpha") has three cases with their rounds
written out: numpy-manual@cpu-toy at 1 ms a round (±2%, one process), jax-scan@cpu-toy
at about 0.51 ms (two processes), torch-nn@cpu-synthetic-100x16 between 0.6 and 1.4 ms
(wide noise), each of 100 epochs. The NEW runs are copies with rounds changed by hand.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BASE = Path(__file__).parents[1] / "fixtures" / "compare" / "base.json"
NUMPY, JAX, TORCH = (
    "numpy-manual@cpu-toy (float32)",
    "jax-scan@cpu-toy (float32)",
    "torch-nn@cpu-synthetic-100x16 (float32)",
)
SAME = "no significant change"


def gdbench(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "suites.run.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def base_doc() -> dict[str, Any]:
    return json.loads(BASE.read_text())


def benchmark(doc: dict[str, Any], variant: str) -> dict[str, Any]:
    return next(b for b in doc["benchmarks"] if b["extra_info"]["variant"] == variant)


def scaled(doc: dict[str, Any], variant: str, factor: float) -> dict[str, Any]:
    """A copy of ``doc`` with every round of ``variant`` multiplied by ``factor``."""
    doc = copy.deepcopy(doc)
    bench = benchmark(doc, variant)
    bench["stats"]["data"] = [t * factor for t in bench["stats"]["data"]]
    bench["stats"]["median"] *= factor
    if "process_rounds" in bench["extra_info"]:
        rounds = bench["extra_info"]["process_rounds"]
        bench["extra_info"]["process_rounds"] = [[t * factor for t in g] for g in rounds]
    return doc


def save(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def table(markdown: str) -> dict[str, tuple[str, str]]:
    """case -> (NEW/BASE cell, verdict), from the Markdown table."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] not in ("case", ""):
            if not set(cells[0]) <= {":", "-"}:
                rows[cells[0]] = (cells[3], cells[4])
    return rows


@pytest.mark.parametrize("gate", [[], ["--fail-slower", "10"]])
def test_an_identical_pair_shows_no_significant_change_and_exits_zero(gate: list[str]) -> None:
    proc = gdbench("compare", BASE, BASE, *gate)
    assert proc.returncode == 0, proc.stderr
    rows = table(proc.stdout)
    assert set(rows) == {NUMPY, JAX, TORCH}
    for ratio, verdict in rows.values():
        assert ratio.startswith("1.00× [")
        assert verdict == SAME
    assert "Only in" not in proc.stdout


def test_a_case_twice_as_slow_with_tight_rounds_is_slower(tmp_path: Path) -> None:
    new = save(scaled(base_doc(), "numpy-manual", 2.0), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new)
    assert proc.returncode == 0, proc.stderr  # no --fail-slower: verdicts only
    rows = table(proc.stdout)
    ratio, verdict = rows[NUMPY]
    assert verdict == "slower"
    # 2.00× [a, b] with 1 < a <= 2 <= b: the medians' ratio inside its interval
    low, high = (float(x) for x in ratio.removeprefix("2.00× [").rstrip("]").split(", "))
    assert 1 < low <= 2 <= high
    assert "| 10 µs " in proc.stdout and "| 20 µs " in proc.stdout  # medians per epoch
    assert rows[JAX][1] == rows[TORCH][1] == SAME


def test_fail_slower_fails_only_beyond_its_percentage(tmp_path: Path) -> None:
    new = save(scaled(base_doc(), "numpy-manual", 2.0), tmp_path / "new.json")
    gate = gdbench("compare", BASE, new, "--fail-slower", "10")
    assert gate.returncode == 1, gate.stderr
    assert NUMPY in gate.stderr and "Traceback" not in gate.stderr
    assert "Failed: 1 case significantly slower" in gate.stdout
    # 2× is 100% slower: under a 150% limit the gate passes
    loose = gdbench("compare", BASE, new, "--fail-slower", "150")
    assert loose.returncode == 0, loose.stderr
    assert "Passed" in loose.stdout
    assert table(loose.stdout)[NUMPY][1] == "slower"


def test_a_faster_case_never_fails_the_gate(tmp_path: Path) -> None:
    new = save(scaled(base_doc(), "numpy-manual", 0.5), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new, "--fail-slower", "10")
    assert proc.returncode == 0, proc.stderr
    ratio, verdict = table(proc.stdout)[NUMPY]
    assert ratio.startswith("0.50× [")
    assert verdict == "faster"


def test_a_two_percent_difference_in_wide_noise_is_no_significant_change(tmp_path: Path) -> None:
    new = save(scaled(base_doc(), "torch-nn", 1.02), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new, "--fail-slower", "1")
    assert proc.returncode == 0, proc.stderr
    ratio, verdict = table(proc.stdout)[TORCH]
    assert ratio.startswith("1.02× [")
    assert verdict == SAME


def with_processes(doc: dict[str, Any], variant: str, levels: list[float]) -> dict[str, Any]:
    """A copy of ``doc`` where ``variant`` was timed in one process per level: ten rounds
    each, within ±0.5% of ``level`` × 0.5 ms."""
    doc = copy.deepcopy(doc)
    jitter = [1.000, 1.005, 0.995, 1.000, 1.005, 0.995, 1.000, 1.002, 0.998, 1.000]
    rounds = [[level * j * 0.5e-3 for j in jitter] for level in levels]
    bench = benchmark(doc, variant)
    bench["extra_info"]["process_rounds"] = rounds
    bench["stats"]["data"] = [t for g in rounds for t in g]
    return doc


def test_the_spread_between_processes_is_part_of_the_interval(tmp_path: Path) -> None:
    """Four processes in each run, NEW's each 0.1 above BASE's: the pooled medians are 9%
    apart and the rounds of a process barely vary, but the processes differ by up to
    40%, so four of them cannot tell 9% apart (resampling rounds alone would say
    slower)."""
    base = save(with_processes(base_doc(), "jax-scan", [0.9, 1.1, 1.1, 1.3]), tmp_path / "b.json")
    new = save(with_processes(base_doc(), "jax-scan", [1.0, 1.2, 1.2, 1.4]), tmp_path / "n.json")
    proc = gdbench("compare", base, new)
    assert proc.returncode == 0, proc.stderr
    ratio, verdict = table(proc.stdout)[JAX]
    assert ratio.startswith("1.09× [")
    assert verdict == SAME


def test_cases_in_one_run_only_are_listed_by_name(tmp_path: Path) -> None:
    doc = base_doc()
    torch = benchmark(doc, "torch-nn")
    doc["benchmarks"].remove(torch)
    extra = copy.deepcopy(benchmark(doc, "numpy-manual"))
    extra["extra_info"]["problem"] = "toy-20"
    extra["extra_info"]["epochs"] = 20
    doc["benchmarks"].append(extra)
    proc = gdbench("compare", BASE, save(doc, tmp_path / "new.json"))
    assert proc.returncode == 0, proc.stderr
    only_base = proc.stdout.split("## Only in BASE (1)")[1].split("##")[0]
    only_new = proc.stdout.split("## Only in NEW (1)")[1].split("##")[0]
    assert f"- {TORCH}" in only_base
    assert "- numpy-manual@cpu-toy-20 (float32)" in only_new
    assert set(table(proc.stdout)) == {NUMPY, JAX}


def test_cases_that_cannot_be_ratioed_are_listed_with_the_reason(tmp_path: Path) -> None:
    doc = base_doc()
    benchmark(doc, "numpy-manual")["extra_info"]["status"] = "diverged"
    benchmark(doc, "jax-scan")["extra_info"]["epochs"] = 50
    torch = benchmark(doc, "torch-nn")
    del torch["stats"]["data"]  # statistics without their rounds
    proc = gdbench("compare", BASE, save(doc, tmp_path / "new.json"), "--fail-slower", "10")
    assert proc.returncode == 0, proc.stderr
    rows = table(proc.stdout)
    assert rows[NUMPY] == ("–", "not compared: NEW diverged")
    assert rows[JAX] == ("–", "not compared: a different problem (100 epochs in BASE, 50 in NEW)")
    assert rows[TORCH] == ("1.00×", "no rounds to judge")


def test_a_failed_case_is_listed_not_dropped(tmp_path: Path) -> None:
    doc = base_doc()
    torch = benchmark(doc, "torch-nn")
    doc["benchmarks"].remove(torch)
    doc["gdbench"]["failures"] = [
        {**torch["extra_info"], "status": "failed", "message": "worker killed by SIGSEGV"}
    ]
    proc = gdbench("compare", BASE, save(doc, tmp_path / "new.json"))
    assert proc.returncode == 0, proc.stderr
    assert table(proc.stdout)[TORCH] == ("–", "not compared: NEW failed")
    assert "Only in" not in proc.stdout


def write_records(folder: Path) -> None:
    """The records of a run: one line per process and case, rounds in ``timing.data``;
    numpy-manual's doubled, in two processes."""
    doc = base_doc()
    run = {"kind": "run", "machine": doc["gdbench"]["machine"]}
    lines = [run]
    for bench in doc["benchmarks"]:
        info = {k: v for k, v in bench["extra_info"].items() if k != "process_rounds"}
        groups = bench["extra_info"].get("process_rounds") or [bench["stats"]["data"]]
        for pid, rounds in enumerate(groups):
            if info["variant"] == "numpy-manual":  # two processes here, 2× slower
                rounds = [2 * t for t in rounds]
                lines.append(info | {"pid": 99, "timing": {"data": rounds, "iterations": 1}})
            lines.append(info | {"pid": pid, "timing": {"data": rounds, "iterations": 1}})
    folder.mkdir()
    (folder / "records.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")


def test_a_run_folder_is_read_from_its_records_when_it_has_no_benchmark_json(
    tmp_path: Path,
) -> None:
    """The records of an interrupted run (no end marker, no benchmark.json)."""
    folder = tmp_path / "run"
    write_records(folder)
    proc = gdbench("compare", BASE, folder)
    assert proc.returncode == 0, proc.stderr
    assert "records.jsonl` (an interrupted run: partial)" in proc.stdout
    rows = table(proc.stdout)
    assert rows[NUMPY][0].startswith("2.00× [")
    assert rows[NUMPY][1] == "slower"
    assert rows[JAX][1] == rows[TORCH][1] == SAME


def test_a_run_folder_without_records_is_read_from_its_benchmark_json(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    save(scaled(base_doc(), "numpy-manual", 2.0), folder / "benchmark.json")
    proc = gdbench("compare", BASE, folder)
    assert proc.returncode == 0, proc.stderr
    assert table(proc.stdout)[NUMPY][1] == "slower"


def test_a_run_folder_is_read_from_its_records_before_its_benchmark_json(tmp_path: Path) -> None:
    # the records are the one source; benchmark.json is an export of them (here it
    # disagrees on purpose: numpy-manual as fast as BASE, where the records double it)
    folder = tmp_path / "run"
    write_records(folder)
    save(base_doc(), folder / "benchmark.json")
    proc = gdbench("compare", BASE, folder)
    assert proc.returncode == 0, proc.stderr
    assert table(proc.stdout)[NUMPY][1] == "slower"


def machine(doc: dict[str, Any], host: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["machine_info"]["node"] = host
    doc["gdbench"]["machine"]["node"] = host
    return doc


def hardware(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``doc`` measured on other hardware or software: machine fields changed."""
    doc = copy.deepcopy(doc)
    for info in (doc["machine_info"]["gdbench"], doc["gdbench"]["machine"]):
        for key, value in changes.items():
            if key in ("numpy", "torch", "jax"):
                info["versions"][key] = value
            else:
                info[key] = value
    return doc


def test_a_baseline_from_another_host_with_the_same_hardware_is_compared(
    tmp_path: Path,
) -> None:
    # a hosted CI runner: a new host name every job, the same CPU, cores and versions
    new = save(machine(base_doc(), "runner-7f3a"), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new, "--fail-slower", "10")
    assert proc.returncode in (0, 1), proc.stderr
    assert "Warning" not in proc.stdout and set(table(proc.stdout)) == {NUMPY, JAX, TORCH}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"cpu_model": "AMD EPYC Test"}, "CPU Intel Xeon Test / AMD EPYC Test"),
        ({"cpu_count": 64}, "cores 2 / 64"),
        ({"numpy": "2.5.0"}, "numpy 2.4.6 / 2.5.0"),
    ],
)
def test_runs_on_different_hardware_or_software_are_refused_naming_it(
    tmp_path: Path, changes: dict, named: str
) -> None:
    new = save(hardware(machine(base_doc(), "beta"), **changes), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new, "--fail-slower", "10")
    assert_usage_error(proc, "different machines", named, "alpha (Intel Xeon Test)")
    assert proc.stdout == ""


def test_force_compares_different_machines_under_a_warning(tmp_path: Path) -> None:
    new = save(hardware(base_doc(), cpu_model="AMD EPYC Test"), tmp_path / "new.json")
    proc = gdbench("compare", BASE, new, "--force")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert "Warning: different machines" in first
    assert "CPU Intel Xeon Test / AMD EPYC Test" in first
    assert set(table(proc.stdout)) == {NUMPY, JAX, TORCH}
    assert "Warning" not in gdbench("compare", BASE, BASE, "--force").stdout


@pytest.mark.parametrize("value", ["-5", "abc", "0", "inf"])
def test_a_bad_fail_slower_value_is_a_usage_error(value: str) -> None:
    proc = gdbench("compare", BASE, BASE, "--fail-slower", value)
    assert_usage_error(proc, "--fail-slower must be a positive percentage", f"'{value}'")


def test_bad_inputs_are_one_line_usage_errors(tmp_path: Path) -> None:
    assert_usage_error(gdbench("compare", tmp_path / "nope.json", BASE), "nope.json: no such file")
    text = tmp_path / "notes.json"
    text.write_text("not json {")
    assert_usage_error(gdbench("compare", BASE, text), "notes.json: not JSON")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_usage_error(gdbench("compare", empty, BASE), "holds no benchmark.json or records")
    check = base_doc() | {"benchmarks": []}  # what `gdbench check` writes: no timing
    assert_usage_error(gdbench("compare", BASE, save(check, tmp_path / "c.json")), "no timed case")
    assert_usage_error(gdbench("compare", BASE), "NEW")


def test_out_writes_the_markdown_that_is_printed(tmp_path: Path) -> None:
    new = save(scaled(base_doc(), "numpy-manual", 2.0), tmp_path / "new.json")
    out = tmp_path / "compare.md"
    proc = gdbench("compare", BASE, new, "--fail-slower", "10", "--out", out)
    assert proc.returncode == 1
    assert out.read_text() == proc.stdout
    assert "| slower " in out.read_text()
    proc = gdbench("compare", BASE, BASE, "--out", tmp_path / "missing" / "compare.md")
    assert_usage_error(proc, "--out", "cannot write there")


def test_the_bench_job_summarises_and_gates_against_a_baseline_where_one_exists() -> None:
    yaml = pytest.importorskip("yaml", reason="pyyaml is not installed")
    workflow = Path(__file__).parents[2] / ".github" / "workflows" / "ci.yml"
    steps = yaml.safe_load(workflow.read_text())["jobs"]["bench"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any('report.md >> "$GITHUB_STEP_SUMMARY"' in r for r in runs)
    assert any('compare.md >> "$GITHUB_STEP_SUMMARY"' in r for r in runs)
    gate = next(s for s in steps if "gdbench compare baseline" in s.get("run", ""))
    assert "--fail-slower" in gate["run"] and "--out results/latest/compare.md" in gate["run"]
    assert "hashFiles('baseline/benchmark.json')" in gate["if"]
