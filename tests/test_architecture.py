"""The layout rules that import-linter cannot check (its contracts are in pyproject.toml):
no module imports a private name from another package, and docs/architecture.md names
only modules that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backends", "suites", "reports")
DOC = ROOT / "docs" / "architecture.md"


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def package_of(module: str) -> str:
    """``suites.run.cli`` -> ``suites.run``; a package's ``__init__`` is its own."""
    return module.rsplit(".", 1)[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts[-1] = "__init__"
    return ".".join(parts)


def private_imports(path: Path, text: str | None = None) -> list[str]:
    """``from OTHER.PACKAGE import _name`` in ``path`` (or in ``text``, as if it were
    that file), where OTHER.PACKAGE is neither the module's own package nor a module in
    it."""
    own = package_of(module_name(path))
    found = []
    text = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module.split(".")[0] not in PACKAGES:
            continue
        source_package = node.module if (ROOT / node.module.replace(".", "/")).is_dir() else (
            package_of(node.module)
        )  # fmt: skip
        if source_package == own:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {a.name}"
            for a in node.names
            if a.name.startswith("_") and not a.name.startswith("__")
        ]
    return found


def test_no_module_imports_a_private_name_from_another_package() -> None:
    found = [line for path in sources() for line in private_imports(path)]
    assert found == []


def test_the_private_name_check_finds_one() -> None:
    # Guards the test above: a planted import of jax_backend's private name is found,
    # and its own package's private names are that package's business.
    planted = "from backends.jax_backend import _loaded\n"
    elsewhere = ROOT / "backends" / "parallel" / "planted.py"
    assert private_imports(elsewhere, planted) == [
        "backends/parallel/planted.py:1: from backends.jax_backend import _loaded"
    ]
    assert private_imports(ROOT / "backends" / "planted.py", planted) == []


def named_modules(text: str) -> set[str]:
    """Paths (``suites/run/cli.py``, ``backends/parallel/``) and dotted modules
    (``backends.parallel.peer``) that the page names in backticks; bare file names in
    a table row are joined to that row's package."""
    names: set[str] = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")] if line.startswith("|") else []
        package = cells[1].strip("`") if len(cells) > 2 and cells[1].startswith("`") else None
        for token in re.findall(r"`([^`\s]+)`", line):
            if re.fullmatch(r"[a-z_]+(/[a-z_]+)*/", token) or re.fullmatch(
                r"[a-z_]+(/[a-z_]+)*\.py", token
            ):
                if "/" not in token and package and package.endswith("/"):
                    token = package + token
                names.add(token)
            elif re.fullmatch(r"(backends|suites|reports)(\.[a-z_]+)+", token):
                names.add(token)
    return names


def exists(name: str) -> bool:
    """A path, a dotted module, or a name defined at the top of a module."""
    if "/" in name or name.endswith(".py"):
        return (ROOT / name).exists()
    path = ROOT.joinpath(*name.split("."))
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return True
    module, _, attr = name.rpartition(".")
    source = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not source.is_file():
        return False
    tree = ast.parse(source.read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}  # fmt: skip
    return attr in defined


def test_every_module_the_architecture_page_names_exists() -> None:
    names = named_modules(DOC.read_text(encoding="utf-8"))
    assert len(names) > 30  # the page names the modules of every package
    assert sorted(n for n in names if not exists(n)) == []


@pytest.mark.parametrize(
    ("name", "real"),
    [
        ("suites/run/cli.py", True),
        ("suites/run/gone.py", False),
        ("backends.parallel.peer", True),
        ("reports.records.case_id", True),
        ("reports.gone", False),
    ],
)
def test_the_page_check_tells_a_missing_module(name: str, real: bool) -> None:
    assert exists(name) is real


def test_a_bare_file_name_in_a_table_row_belongs_to_that_rows_package() -> None:
    row = "| `suites/run/` | `cli.py`, `gone.py` | who runs it |"
    assert named_modules(row) == {"suites/run/", "suites/run/cli.py", "suites/run/gone.py"}


def test_the_architecture_page_names_every_module() -> None:
    # the reverse check: a module added without a place on the map fails here
    named = named_modules(DOC.read_text(encoding="utf-8"))
    modules = {str(p.relative_to(ROOT)) for p in sources() if p.name != "__init__.py"}
    assert sorted(modules - named) == []
