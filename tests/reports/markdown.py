"""Reading report.md back in tests: the cell of a variant's row under a problem's column
in the first table of a section."""

from __future__ import annotations


def section(report: str, heading: str) -> str:
    """The text of the first section whose heading starts with ``heading`` (after the
    ``#`` marks), up to the next heading of any level."""
    lines = report.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and line.lstrip("#").strip().startswith(heading):
            rest = []
            for following in lines[i + 1 :]:
                if following.startswith("#"):
                    break
                rest.append(following)
            return "\n".join(rest)
    raise AssertionError(f"no section '{heading}' in the report")


def cell(report: str, heading: str, row: str, column: str) -> str:
    """The cell in row ``row`` (first column) under ``column`` of the tables of the
    section ``heading`` (a split table: whichever part has the column)."""
    text = section(report, heading)
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif cells[0] == row and column in header:
            return cells[header.index(column)]
    raise AssertionError(f"no cell ({row}, {column}) in section '{heading}'")
