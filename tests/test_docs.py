"""The documentation stays true to the code: every option of the command line is in
docs/usage.md, every column the report writes is in docs/report-format.md, and every
link in README.md and docs/ leads to a file that exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from reports import frame
from suites.run.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
USAGE = ROOT / "docs" / "usage.md"
REPORT_FORMAT = ROOT / "docs" / "report-format.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def options() -> list[tuple[str, str]]:
    """(command, option) for every option of every command, and of gdbench itself."""
    parser = build_parser()
    out = [("gdbench", o) for a in parser._actions for o in a.option_strings]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                out += [(command, o) for a in sub._actions for o in a.option_strings]
    return [(c, o) for c, o in out if o.startswith("--") and o != "--help"]


def mentions(text: str, name: str) -> bool:
    """Whether ``name`` appears in backticks, alone or at the start of a code span
    (`--out DIR`)."""
    return re.search(rf"`{re.escape(name)}(?![\w-])[^`]*`", text) is not None


def test_every_option_of_the_command_line_is_in_the_usage_page() -> None:
    text = USAGE.read_text(encoding="utf-8")
    missing = sorted({f"{c} {o}" for c, o in options() if not mentions(text, o)})
    assert not missing, f"docs/usage.md does not name: {missing}"
    # each command has a section of its own
    for command in ("run", "check", "report", "show", "compare", "list", "rank"):
        assert re.search(rf"^#+ .*\b{command}\b", text, re.M), command


COLUMNS = {
    "results.csv": frame.RESULT_COLUMNS,
    "the convergence table": frame.CONVERGENCE_COLUMNS,
    "scaling.csv": frame.SCALING_COLUMNS,
    "the paired rounds": frame.PAIRED_COLUMNS,
    "the bandwidth rows": frame.BANDWIDTH_COLUMNS,
    "trajectories.csv": ["problem", "variant", "device", "dtype", "epoch", "loss", "b"],
}


@pytest.mark.parametrize("what", list(COLUMNS))
def test_every_column_the_report_writes_is_in_the_report_format_page(what: str) -> None:
    text = REPORT_FORMAT.read_text(encoding="utf-8")
    missing = [c for c in COLUMNS[what] if not mentions(text, c)]
    assert not missing, f"docs/report-format.md does not describe {what}'s {missing}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_link_leads_to_a_file_that_exists(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            dead.append(target)
    assert not dead, f"{page.name}: links to nothing: {dead}"
