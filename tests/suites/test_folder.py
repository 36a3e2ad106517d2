"""Run folders (suites/run/folder.py): what a report is built from in a run's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from suites.run.folder import UsageError, run_source


def folder_with(tmp_path: Path, *names: str) -> Path:
    for name in names:  # the records of a run that finished, or a JSON
        text = '{"kind": "end", "interrupted": false}\n' if name.endswith(".jsonl") else "{}"
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_runs_records_come_before_its_json_exports(tmp_path: Path) -> None:
    # finished or not, the records are the one source; benchmark.json is an export
    run = folder_with(tmp_path, "records.jsonl", "benchmark.json", "convergence.json")
    assert run_source(run) == run / "records.jsonl"


@pytest.mark.parametrize(
    ("names", "chosen"),
    [(("benchmark.json", "convergence.json"), "benchmark.json"),
     (("convergence.json",), "convergence.json")],
)  # fmt: skip
def test_a_folder_of_json_alone_is_read_from_it(tmp_path: Path, names, chosen) -> None:
    assert run_source(folder_with(tmp_path, *names)) == tmp_path / chosen


def test_a_folder_with_nothing_to_report_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"holds no benchmark\.json, convergence\.json or "):
        run_source(folder_with(tmp_path, "run.json"))
