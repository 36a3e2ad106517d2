"""Variants from other packages (backends/plugins.py, docs/plugins.md): found from the
installed distributions' metadata, imported only when built, refused when they take a
name gdbench cannot give them, unavailable (with the error) when they cannot be
imported or built, and refused when their results have the wrong shape or dtype."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from backends import (
    DEVICES,
    VARIANTS,
    BackendUnavailable,
    BadResult,
    TrainResult,
    all_variants,
    check_result,
    devices_of,
    framework_of,
    get_backend,
    installed_plugins,
    is_plugin,
    list_backends,
    plugin_variants,
)
from backends import plugins as plugin_entries
from backends.base import result_error
from suites.problems import preset
from tests.conftest import fake_distribution

# A plugin that trains as numpy-manual does, under the name NAME, on the CPU only.
PLAIN = """
from backends import BackendUnavailable, get_backend


class Plain:
    variant = "NAME"
    framework = "numpy"

    def __init__(self, device):
        if device != "cpu":
            raise BackendUnavailable("NAME runs on the CPU only, not on " + device)
        self.device = device
        self.inner = get_backend("numpy-manual")

    def prepare(self, problem, *, record_params=False):
        return self.inner.prepare(problem, record_params=record_params)
"""
# A module that must never be imported (the test fails if it is).
EXPLODES = 'raise RuntimeError("this plugin module was imported")\n'


def test_discovery_reads_metadata_only_and_imports_no_plugin_module(plugin_site: Path) -> None:
    fake_distribution(
        plugin_site, "lazy-dist", {"numpy-lazy": "lazy_mod:Lazy"}, {"lazy_mod": EXPLODES}
    )
    assert plugin_variants() == ("numpy-lazy",)
    assert all_variants() == (*VARIANTS, "numpy-lazy")
    (plugin,) = installed_plugins()
    assert (plugin.name, plugin.target, plugin.dist, plugin.refused) == (
        "numpy-lazy", "lazy_mod:Lazy", "lazy-dist 0.1", "",
    )  # fmt: skip
    # what the manager asks of a variant, answered without importing it
    assert is_plugin("numpy-lazy") and not is_plugin("numpy-manual")
    assert framework_of("numpy-lazy") == plugin_entries.UNKNOWN_FRAMEWORK
    assert devices_of("numpy-lazy") == DEVICES
    assert "lazy_mod" not in sys.modules


def test_a_plugin_is_built_from_its_class_and_its_framework_read_once_loaded(
    plugin_site: Path,
) -> None:
    source = PLAIN.replace("NAME", "numpy-plain")
    fake_distribution(
        plugin_site, "plain-dist", {"numpy-plain": "plain_mod:Plain"}, {"plain_mod": source}
    )
    backend = get_backend("numpy-plain", "cpu")
    assert (backend.variant, backend.framework, backend.device) == ("numpy-plain", "numpy", "cpu")
    assert framework_of("numpy-plain") == "numpy"
    problem = preset("toy")
    check_result("numpy-plain", backend.prepare(problem).train(), problem)
    # a device it has no form on: its own reason
    with pytest.raises(BackendUnavailable, match="^numpy-plain runs on the CPU only, not on cuda$"):
        get_backend("numpy-plain", "cuda")


def test_list_backends_gives_a_plugins_rows_their_distribution(plugin_site: Path) -> None:
    source = PLAIN.replace("NAME", "numpy-listed")
    fake_distribution(plugin_site, "listed-dist", {"numpy-listed": "listed_mod:Plain"},
                      {"listed_mod": source})  # fmt: skip
    assert "numpy-listed" not in {r.variant for r in list_backends()}  # built-ins by default
    rows = {(r.variant, r.device): r for r in list_backends(variants=all_variants())}
    cpu, cuda = rows[("numpy-listed", "cpu")], rows[("numpy-listed", "cuda")]
    assert (cpu.framework, cpu.available, cpu.reason, cpu.origin) == (
        "numpy", True, "", "listed-dist 0.1",
    )  # fmt: skip
    assert not cuda.available and cuda.reason == "numpy-listed runs on the CPU only, not on cuda"
    assert rows[("numpy-manual", "cpu")].origin == ""


def test_a_plugin_that_cannot_be_imported_is_unavailable_with_its_error(plugin_site: Path) -> None:
    fake_distribution(plugin_site, "broken-dist", {"numpy-broken": "broken_mod:Broken"},
                      {"broken_mod": "import gdbench_no_such_framework\n"})  # fmt: skip
    assert plugin_variants() == ("numpy-broken",)  # found: its metadata is fine
    with pytest.raises(BackendUnavailable) as err:
        get_backend("numpy-broken", "cpu")
    assert str(err.value) == (
        "plugin 'numpy-broken' of broken-dist 0.1 (broken_mod:Broken) cannot be imported: "
        "ModuleNotFoundError: No module named 'gdbench_no_such_framework'"
    )
    (row, _) = list_backends(variants=("numpy-broken",))
    assert (row.available, row.framework, row.reason) == (False, "?", str(err.value))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # a class that is not there
        ("", "cannot be imported: AttributeError: module 'odd_mod' has no attribute 'Odd'"),
        # a constructor that fails with something else than BackendUnavailable
        ("class Odd:\n    def __init__(self):\n        pass\n",
         "cannot be built on cpu: TypeError: "),
        # a class that calls itself by another name
        ("class Odd:\n    variant = 'numpy-manual'\n    framework = 'numpy'\n"
         "    def __init__(self, device):\n        self.device = device\n",
         "is refused: its class's variant is 'numpy-manual'; it must be the entry point's "
         "name, 'numpy-odd'"),
        ("class Odd:\n    variant = 'numpy-odd'\n    framework = None\n"
         "    def __init__(self, device):\n        self.device = device\n",
         "is refused: its framework is None"),
    ],
    ids=["no-class", "constructor-error", "other-variant-name", "no-framework"],
)  # fmt: skip
def test_a_plugin_that_cannot_be_built_or_breaks_the_protocol_is_unavailable_saying_why(
    plugin_site: Path, source: str, message: str
) -> None:
    fake_distribution(plugin_site, "odd-dist", {"numpy-odd": "odd_mod:Odd"}, {"odd_mod": source})
    with pytest.raises(BackendUnavailable) as err:
        get_backend("numpy-odd", "cpu")
    assert str(err.value).startswith(f"plugin 'numpy-odd' of odd-dist 0.1 (odd_mod:Odd) {message}")


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("numpy-manual", "claim_mod:C", "'numpy-manual' is the name of a built-in variant"),
        ("core", "claim_mod:C", "'core' is the name of a group of --backends"),
        ("plugins", "claim_mod:C", "'plugins' is the name of a group of --backends"),
        ("all", "claim_mod:C", "'all' is the name of a group of --backends"),
        ("numpy@odd", "claim_mod:C", "'numpy@odd' is not a variant name"),
        ("numpy-module", "claim_mod", "'claim_mod' names a module, not a class"),
    ],
)
def test_a_name_gdbench_cannot_give_a_plugin_is_refused_without_importing_it(
    plugin_site: Path, name: str, value: str, why: str
) -> None:
    fake_distribution(plugin_site, "claim-dist", {name: value}, {"claim_mod": EXPLODES})
    (plugin,) = installed_plugins()
    assert plugin.refused.startswith(why)
    assert name not in plugin_variants()
    assert "claim_mod" not in sys.modules
    if name in VARIANTS:  # the built-in keeps its name
        assert not is_plugin(name) and get_backend(name).__class__.__module__.startswith("backends")


def test_a_name_two_distributions_claim_is_refused_for_both(
    plugin_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder, dist in (("a", "first-dist"), ("b", "second-dist")):
        fake_distribution(plugin_site / folder, dist, {"numpy-twice": "twice_mod:C"})
        monkeypatch.syspath_prepend(str(plugin_site / folder))
    claims = installed_plugins()
    assert sorted(p.dist for p in claims) == ["first-dist 0.1", "second-dist 0.1"]
    assert plugin_variants() == ()
    for plugin in claims:
        assert plugin.refused == (
            "'numpy-twice' is claimed by 2 distributions (first-dist 0.1, second-dist 0.1): "
            "uninstall one"
        )


def test_a_result_of_the_wrong_shape_or_dtype_is_refused_naming_the_plugin(
    plugin_site: Path,
) -> None:
    fake_distribution(
        plugin_site, "shape-dist", {"numpy-shape": "shape_mod:S"}, {"shape_mod": EXPLODES}
    )
    problem = preset("toy")  # 4 rows, 1 feature, 100 epochs, float32, no bias
    result = TrainResult(np.zeros(99, np.float32), np.zeros(1, np.float32), None)
    with pytest.raises(BadResult) as err:
        check_result("numpy-shape", result, problem)
    assert str(err.value) == (
        "plugin 'numpy-shape' of shape-dist 0.1 (shape_mod:S) refused: losses has shape "
        "(99,), expected (100,) (100 epochs, 1 features)"
    )
    # a built-in variant is named as itself
    with pytest.raises(BadResult, match=r"^numpy-manual refused: losses has shape"):
        check_result("numpy-manual", result, problem)


def _good(bias: bool, dtype: str = "float32", record: bool = True) -> TrainResult:
    problem = (preset("toy-bias", dtype) if bias else preset("toy", dtype)).replace(epochs=3)
    return get_backend("numpy-manual").prepare(problem, record_params=record).train()


F32, F64 = np.float32, np.float64


@pytest.mark.parametrize(
    ("bias", "change", "what"),
    [
        (False, {"losses": np.zeros(2, F32)}, "losses has shape (2,), expected (3,)"),
        (False, {"losses": np.zeros(3, F64)}, "losses is float64, expected the problem's dtype"),
        (False, {"losses": [0.0, 0.0, 0.0]}, "losses is a list, not a NumPy array"),
        (False, {"w": np.zeros((1, 1), F32)}, "w has shape (1, 1), expected (1,)"),
        (False, {"w": np.zeros(1, np.float16)}, "w is float16, expected"),
        (False, {"b": 0.0}, "b is 0.0, expected None (the problem has no bias)"),
        (True, {"b": None}, "b is None, expected a float (the problem has a bias)"),
        (False, {"w_history": np.zeros((2, 1), F32)}, "w_history has shape (2, 1)"),
        (False, {"b_history": np.zeros(3, F32)}, "b_history was returned for a problem without"),
        (True, {"b_history": np.zeros(3, F64)}, "b_history is float64"),
    ],
)
def test_result_error_names_what_breaks_the_train_result_contract(
    bias: bool, change: dict, what: str
) -> None:
    good = _good(bias)
    problem = (preset("toy-bias") if bias else preset("toy")).replace(epochs=3)
    assert result_error(good, problem) == ""
    fields = {k: getattr(good, k) for k in ("losses", "w", "b", "w_history", "b_history")}
    assert result_error(TrainResult(**(fields | change)), problem).startswith(what)


def test_result_error_accepts_numpy_manual_in_each_dtype_and_a_shorter_run() -> None:
    for dtype in ("float32", "float64"):
        for bias in (False, True):
            problem = (preset("toy-bias", dtype) if bias else preset("toy", dtype)).replace(
                epochs=3
            )
            session = get_backend("numpy-manual").prepare(problem, record_params=True)
            assert result_error(session.train(), problem) == ""
            assert result_error(session.train(2), problem, 2) == ""
            assert result_error(session.train(2), problem) != ""  # 2 epochs are not 3
    assert result_error(("not", "a", "result"), preset("toy")) == (
        "train returned a tuple, not a TrainResult"
    )
