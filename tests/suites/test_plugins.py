"""Selecting variants from other packages (``--backends plugins``, ``all``, a name), and
what the manager does with them without importing them: a worker of their own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backends import GROUPS, VARIANTS
from suites.config import ConfigError, RunConfig, variant_names
from suites.run import limits, workers
from tests.conftest import fake_distribution

# A module that must never be imported (the test fails if it is).
EXPLODES = 'raise RuntimeError("this plugin module was imported")\n'


def install(site: Path, dist: str, *names: str, module: str = "lazy_mod") -> None:
    """A distribution ``dist`` whose entry points name ``names``, none importable."""
    fake_distribution(site, dist, {n: f"{module}:C" for n in names}, {module: EXPLODES})


def test_plugins_selects_the_installed_plugins_and_all_adds_them_after_the_built_ins(
    plugin_site: Path,
) -> None:
    install(plugin_site, "two-dist", "numpy-b", "numpy-a")
    assert variant_names("plugins") == ("numpy-a", "numpy-b")  # by name
    assert variant_names("numpy-manual,plugins") == ("numpy-manual", "numpy-a", "numpy-b")
    assert variant_names("numpy-b") == ("numpy-b",)
    assert variant_names("all") == (*VARIANTS, "numpy-a", "numpy-b")
    assert variant_names("core") == GROUPS["core"]  # a group of built-ins stays so
    with pytest.raises(ConfigError, match=r"unknown value 'numpy-bb' \(did you mean 'numpy-b'"):
        variant_names("numpy-bb")
    assert "lazy_mod" not in sys.modules


def test_plugins_with_none_installed_is_bad_input_saying_what_a_plugin_is(
    plugin_site: Path,
) -> None:
    with pytest.raises(ConfigError) as err:
        variant_names("plugins")
    assert str(err.value).startswith(
        "--backends plugins: no variant from another package is installed"
    )
    assert variant_names("numpy-manual,plugins") == ("numpy-manual",)


def test_a_refused_plugin_makes_selecting_it_bad_input_naming_it(plugin_site: Path) -> None:
    install(plugin_site, "claim-dist", "numpy-manual", "numpy-fine")
    named = (
        "--backends {}: plugin 'numpy-manual' of claim-dist 0.1 (lazy_mod:C) is refused: "
        "'numpy-manual' is the name of a built-in variant"
    )
    for selection in ("plugins", "all", "numpy-fine,plugins"):
        with pytest.raises(ConfigError) as err:
            variant_names(selection)
        item = "all" if "all" in selection else "plugins"
        assert str(err.value).startswith(named.format(item))
        assert "\n" not in str(err.value)
    # the built-in name still means the built-in; the other plugin is selectable
    assert variant_names("numpy-manual,numpy-fine") == ("numpy-manual", "numpy-fine")
    assert "lazy_mod" not in sys.modules


def test_a_name_only_refused_plugins_claim_is_bad_input_naming_them(
    plugin_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("a", "b"):
        install(plugin_site / folder, f"{folder}-dist", "numpy-twice", module=f"{folder}_mod")
        monkeypatch.syspath_prepend(str(plugin_site / folder))
    with pytest.raises(ConfigError) as err:
        variant_names("numpy-twice")
    assert str(err.value).startswith(
        "--backends numpy-twice: plugin 'numpy-twice' of a-dist 0.1 (a_mod:C) is refused: "
        "'numpy-twice' is claimed by 2 distributions"
    )


def test_a_plugin_gets_a_worker_of_its_own_planned_without_importing_it(
    plugin_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    install(plugin_site, "lazy-dist", "numpy-lazy")
    cfg = RunConfig(problems=("toy",), backends=("numpy-manual", "numpy-lazy", "numpy-blocked"))
    for isolate in ("variant", "framework"):
        jobs = workers.plan(cfg, isolate, 1, timing=False)
        own = [j for j in jobs if "numpy-lazy" in j.backends]
        assert [(j.label, j.backends) for j in own] == [("numpy-lazy@cpu", ("numpy-lazy",))]
    (everything,) = workers.plan(cfg, "none", 1, timing=False)  # asked for: one process
    assert everything.backends == cfg.backends
    # on cuda: its framework is unknown here, so jax's preallocation is switched off
    cuda = RunConfig(problems=("toy",), backends=("numpy-lazy",), devices=("cuda",))
    (job,) = workers.plan(cuda, "variant", 1, timing=False)
    assert workers.worker_env(job, 2)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    limits.check_memory(cuda, available=2**40, gpu_free=2**40)
    assert "lazy_mod" not in sys.modules
