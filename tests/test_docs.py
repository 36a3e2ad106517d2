"""The documentation stays true to the code: every option of the command line is in
docs/usage.md, every column the report writes is in docs/report-format.md, every link
in README.md and docs/ leads to a file (and heading) that exists, every figure is
labelled with the run it came from, and the install the README describes is the one
the Makefile, tox and CI do."""

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
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces
    as hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    titles = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_link_leads_to_a_file_that_exists(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve()
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            dead.append(target)
    assert not dead, f"{page.name}: links to nothing: {dead}"


RUN_ID = re.compile(r"\d{8}T\d{6}Z")  # a run folder's name: results/20261206T100953Z
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_figure_names_the_run_it_came_from(page: Path) -> None:
    """A figure in README or docs is a copy of a run's plot: its caption (alt text) and
    its file name carry the same run, so a reader can tell when and where it was made."""
    unlabelled = []
    for alt, target in IMAGE.findall(page.read_text(encoding="utf-8")):
        run = RUN_ID.search(alt)
        if not (page.parent / target).exists() or not run or run.group() not in target:
            unlabelled.append(target)
    assert not unlabelled, f"{page.name}: figures without their run: {unlabelled}"


def test_every_figure_file_is_shown_somewhere() -> None:
    shown = {
        (page.parent / target).resolve()
        for page in pages()
        for _, target in IMAGE.findall(page.read_text(encoding="utf-8"))
    }
    orphans = [p.name for p in (ROOT / "docs" / "figures").glob("*") if p.resolve() not in shown]
    assert not orphans, f"docs/figures holds figures no page shows: {orphans}"


def test_the_readme_starts_with_the_two_commands_and_fits_a_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"
    first = lines.index("```sh")
    block = lines[first + 1 : lines.index("```", first)]
    assert [line.split()[:2] for line in block] == [["make", "bench"], ["make", "test"]]


def test_the_cpu_only_install_of_the_readme_is_the_one_ci_uses() -> None:
    """The README's CPU-only torch index is the one the CI workflow installs from, and
    nothing between the user's environment and pip drops it: the Makefile gives pip no
    index of its own, tox passes PIP_* on."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    told = set(re.findall(r"PIP_EXTRA_INDEX_URL=(\S+)", readme))
    used = set(re.findall(r"PIP_EXTRA_INDEX_URL: (\S+)", ci))
    assert told and told == used
    makefile = re.sub(r"(?m)^\s*#.*$", "", (ROOT / "Makefile").read_text(encoding="utf-8"))
    assert not re.search(r"--(extra-)?index-url|--no-index|PIP_\w+ *[:?]?=", makefile)
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    assert re.search(r"^pass_env\s*=\s*\n(\s+.*\n)*?\s+PIP_\*", tox, re.M)
