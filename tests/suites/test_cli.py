"""The command line's own rules, without running anything: the old name of an option."""

from __future__ import annotations

import pytest

from suites.run.cli import _config, build_parser
from suites.run.folder import UsageError


def config_of(*argv: str):
    return _config(build_parser().parse_args(["run", "--backends", "torch-ddp", *argv]))


def test_the_old_workers_option_is_ranks_with_one_warning(capsys) -> None:
    assert config_of("--ranks", "1,2").ranks == (1, 2)
    assert capsys.readouterr().err == ""
    assert config_of("--workers", "2,1").ranks == (1, 2)
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and "--workers is now called --ranks" in warning[0]


def test_the_old_and_the_new_name_together_are_refused() -> None:
    with pytest.raises(UsageError, match="--workers is the old name of --ranks"):
        config_of("--workers", "1", "--ranks", "1")
