"""The registry of variants: each public variant name, the module that builds it.

The registry maps a public variant name to the module that builds it. Modules are
imported on first use only, because their framework may not be installed:
``import backends`` imports neither torch nor jax (``tests/test_no_dependencies.py``
proves it). Variants from other packages (``backends/plugins.py``) join the built-in
ones by name: found from the installed distributions' metadata on first use, their
modules imported only when one of their backends is built.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import sys
from dataclasses import dataclass

from backends import plugins as plugin_entries
from backends.base import (
    Backend,
    BackendUnavailable,
    BadResult,
    ProblemSpec,
    check_precision,
    result_error,
)
from backends.blocking import block_rows_for
from backends.plugins import Plugin

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class _Entry:
    module: str  # module under backends/ that defines the class
    cls: str
    framework: str
    devices: tuple[str, ...]
    blocked: bool = False  # a single-pass variant: takes block_rows
    parallel: bool = False  # data-parallel over K ranks (``--ranks``)
    # K processes that form one world for life (jax.distributed.initialize runs once per
    # process): every K needs a worker process of its own
    processes: bool = False
    plugin: Plugin | None = None  # a variant from another package (backends/plugins.py)


# Public variant names -> where they live. Order is the order of every table.
_REGISTRY: dict[str, _Entry] = {
    "numpy-manual": _Entry("numpy_backend", "NumpyManual", "numpy", ("cpu",)),
    "numpy-blocked": _Entry("numpy_backend", "NumpyBlocked", "numpy", ("cpu",), blocked=True),
    "torch-autograd": _Entry("torch_backend", "TorchAutograd", "torch", DEVICES),
    "torch-nn": _Entry("torch_backend", "TorchNN", "torch", DEVICES),
    "torch-manual": _Entry("torch_backend", "TorchManual", "torch", DEVICES),
    "torch-compile": _Entry("torch_backend", "TorchCompile", "torch", DEVICES),
    "torch-cudagraph": _Entry("torch_backend", "TorchCudaGraph", "torch", ("cuda",)),
    "torch-blocked": _Entry("torch_backend", "TorchBlocked", "torch", DEVICES, blocked=True),
    "jax-grad": _Entry("jax_backend", "JaxGrad", "jax", DEVICES),
    "jax-manual": _Entry("jax_backend", "JaxManual", "jax", DEVICES),
    "jax-scan": _Entry("jax_backend", "JaxScan", "jax", DEVICES),
    "jax-blocked": _Entry("jax_backend", "JaxBlocked", "jax", DEVICES, blocked=True),
    "torch-ddp": _Entry("parallel.torch_parallel", "TorchDDP", "torch", DEVICES, parallel=True),
    "torch-allreduce": _Entry(
        "parallel.torch_parallel", "TorchAllreduce", "torch", DEVICES, parallel=True
    ),
    "jax-sharded": _Entry("parallel.jax_parallel", "JaxSharded", "jax", DEVICES, parallel=True),
    "jax-shardmap": _Entry("parallel.jax_parallel", "JaxShardmap", "jax", DEVICES, parallel=True),
    "jax-sharded-procs": _Entry(
        "parallel.jax_parallel", "JaxShardedProcs", "jax", DEVICES, parallel=True, processes=True
    ),
    "jax-shardmap-procs": _Entry(
        "parallel.jax_parallel", "JaxShardmapProcs", "jax", DEVICES, parallel=True, processes=True
    ),
}
VARIANTS: tuple[str, ...] = tuple(_REGISTRY)

# Variant groups, usable in --backends next to names: "core", the single-device styles a
# run compares unless told otherwise; "single-pass", the *-blocked forms of three of
# them; "data-parallel", the forms over K devices or processes (each K a case).
GROUPS: dict[str, tuple[str, ...]] = {
    "core": tuple(v for v, e in _REGISTRY.items() if not (e.blocked or e.parallel)),
    "single-pass": tuple(v for v, e in _REGISTRY.items() if e.blocked),
    "data-parallel": tuple(v for v, e in _REGISTRY.items() if e.parallel),
}
DEFAULT_GROUP = "core"  # what `gdbench run` and `gdbench check` select by default
# The group of the variants from other packages (backends/plugins.py): unlike GROUPS, it
# is known only once the installed distributions have been read (plugin_variants).
PLUGIN_GROUP = "plugins"

# How to install each framework, for the message of a missing one.
_INSTALL = {
    "torch": "pip install 'gdbench[torch]' -c constraints.txt",
    "jax": "pip install 'gdbench[jax]' -c constraints.txt",
    "numpy": "pip install numpy",
}


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`list_backends`: a variant on a device and whether it runs here."""

    variant: str
    framework: str
    device: str
    available: bool
    reason: str  # empty when available
    origin: str = ""  # a plugin's distribution and version; empty for a built-in variant


def closest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest valid name, or ``""``."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


@functools.cache
def installed_plugins() -> tuple[Plugin, ...]:
    """Every claim of the ``gdbench.variants`` entry points among the installed
    distributions, refused ones too, by name; read once per process, from metadata only
    (no plugin module is imported)."""
    return plugin_entries.discover(VARIANTS, (*GROUPS, PLUGIN_GROUP, "all"))


def plugin_variants() -> tuple[str, ...]:
    """The variants of other packages that may be selected (not refused), by name."""
    return tuple(p.name for p in installed_plugins() if not p.refused)


def all_variants() -> tuple[str, ...]:
    """The built-in variants, then those of other packages: what ``all`` selects."""
    return (*VARIANTS, *plugin_variants())


def plugin_of(variant: str) -> Plugin | None:
    """The plugin that provides ``variant``, or None for a built-in or unknown name."""
    if variant in _REGISTRY:
        return None
    return next((p for p in installed_plugins() if p.name == variant and not p.refused), None)


def is_plugin(variant: str) -> bool:
    """Whether ``variant`` comes from another package (no import needed)."""
    return plugin_of(variant) is not None


def _entry(variant: str) -> _Entry:
    try:
        return _REGISTRY[variant]
    except KeyError:
        pass
    plugin = plugin_of(variant)
    if plugin is None:
        names = all_variants()
        raise ValueError(
            f"unknown backend variant '{variant}'{closest(variant, names)}; "
            f"choose from: {', '.join(names)}"
        )
    # which devices it has a form for is known to its class only: it says so on being built
    return _Entry("", plugin.target, plugin_entries.UNKNOWN_FRAMEWORK, DEVICES, plugin=plugin)


def get_backend(
    variant: str,
    device: str = "cpu",
    matmul_precision: str = "float32",
    block_rows: int | None = None,
    *,
    ranks: int = 1,
    threads: int | None = None,
) -> Backend:
    """Build the backend ``variant`` on ``device``.

    Args:
        variant: a name from :data:`VARIANTS`, e.g. ``"jax-scan"``, or of a plugin
            (:func:`plugin_variants`), built as ``Class(device)``: the other arguments
            are the built-in variants'.
        device: ``"cpu"`` or ``"cuda"``.
        matmul_precision: ``"float32"`` (full, the default) or ``"tf32"``
            (:data:`MATMUL_PRECISIONS`); numpy has only full float32.
        block_rows: rows per block of the single-pass variants (``*-blocked``;
            ``--block-rows``); ``None`` chooses it from the machine's L2 cache
            (``backends/blocking.py``). Ignored by the other variants.
        ranks: K, the devices or ranks of a data-parallel variant (ignored by the
            others).
        threads: the threads the K ranks share (data-parallel torch variants).

    Returns:
        A ready backend.

    Raises:
        ValueError: the variant, device or matmul precision is not one gdbench knows.
        BackendUnavailable: the framework is not installed, or the device is absent; a
            plugin that cannot be imported or built, with its error.
    """
    entry = _entry(variant)
    check_precision(matmul_precision)
    if device not in DEVICES:
        raise ValueError(
            f"unknown device '{device}'{closest(device, DEVICES)}; choose from: "
            f"{', '.join(DEVICES)}"
        )
    if device not in entry.devices:
        raise BackendUnavailable(
            f"{variant} runs on {', '.join(entry.devices)} only, not on {device}"
        )
    if entry.plugin is not None:
        return plugin_entries.build(entry.plugin, device)
    try:
        module = importlib.import_module(f"backends.{entry.module}")
    except ImportError as err:
        missing = getattr(err, "name", None) or entry.framework
        if missing.split(".")[0] != entry.framework:
            raise  # a broken install of something else: not ours to hide
        raise BackendUnavailable(
            f"{entry.framework} is not installed: {_INSTALL[entry.framework]}"
        ) from None
    cls = getattr(module, entry.cls)
    kwargs: dict[str, object] = {}
    if entry.framework != "numpy":
        kwargs["matmul_precision"] = matmul_precision
    if entry.blocked:
        kwargs["block_rows"] = block_rows
    if entry.parallel:
        kwargs |= {"ranks": ranks, "threads": threads}
    backend: Backend = cls(device, **kwargs)
    return backend


def list_backends(
    devices: tuple[str, ...] = DEVICES, variants: tuple[str, ...] = VARIANTS
) -> list[BackendInfo]:
    """Every variant (of ``variants``, which may name plugins: :func:`all_variants`) on
    every device it supports, with availability and the reason. Only the frameworks of
    ``variants`` are imported, and the modules of the plugins among them."""
    rows = []
    for variant in (*_REGISTRY, *plugin_variants()):
        if variant not in variants:
            continue
        entry = _entry(variant)
        origin = entry.plugin.dist if entry.plugin is not None else ""
        for device in devices:
            if device not in entry.devices:
                continue
            try:
                get_backend(variant, device)
            except BackendUnavailable as err:
                available, reason = False, str(err)
            else:
                available, reason = True, ""
            # a plugin's framework is known once its class is loaded (by get_backend)
            framework = framework_of(variant)
            rows.append(BackendInfo(variant, framework, device, available, reason, origin))
    return rows


def check_result(
    variant: str, result: object, problem: ProblemSpec, epochs: int | None = None
) -> None:
    """Refuse a result of the wrong shape or dtype (:func:`backends.base.result_error`).

    Raises:
        BadResult: one line naming the variant (a plugin with its distribution and
            class) and what was wrong.
    """
    wrong = result_error(result, problem, epochs)
    if wrong:
        plugin = plugin_of(variant)
        who = plugin.describe() if plugin is not None else variant
        raise BadResult(f"{who} refused: {wrong}")


def precision_settings() -> dict[str, dict[str, object]]:
    """The matmul-precision switches of every framework already loaded in this process,
    as they are now: what a run computed with, for its record."""
    out: dict[str, dict[str, object]] = {}
    for framework, module in (("torch", "torch_backend"), ("jax", "jax_backend")):
        loaded = sys.modules.get(f"backends.{module}")
        if loaded is not None:
            out[framework] = loaded.precision_settings()
    return out


def block_rows_of(
    variant: str, n_features: int, dtype: str, requested: int | None = None
) -> int | None:
    """The rows per block ``variant`` uses on a problem of ``n_features`` in ``dtype``
    (``requested`` is ``--block-rows``), or None for a variant that does not block."""
    if not _entry(variant).blocked:
        return None
    return block_rows_for(n_features, dtype, requested)


def is_parallel(variant: str) -> bool:
    """Whether ``variant`` is data-parallel over K ranks (``--ranks``)."""
    return _entry(variant).parallel


def join_world(variant: str, device: str, ranks: int, threads: int | None = None) -> None:
    """Before anything else asks the framework a question in this process: make it rank 0
    of ``variant``'s world of ``ranks`` processes (a K-process jax variant:
    ``jax.distributed.initialize`` must come before jax's first computation). Nothing
    for the other variants, for K = 1, or where the framework is not installed (its
    cases then say so). A failure is kept and raised again by the backend, so its cases
    fail with the reason."""
    entry = _entry(variant)
    if not entry.processes or ranks < 2:
        return
    try:
        module = importlib.import_module(f"backends.{entry.module}")
    except ImportError:
        return
    with contextlib.suppress(Exception):  # kept by the module: the backend raises it
        module.join_world(ranks, device, threads)


def world_per_process(variant: str) -> bool:
    """Whether each K of ``variant`` needs a process of its own (its K processes form
    one jax.distributed world for that process's life)."""
    return _entry(variant).processes


def case_label(variant: str, ranks: int) -> str:
    """The name of a case's variant in records and reports: ``torch-ddp-x2`` for a
    data-parallel variant on K = 2 ranks, the variant itself otherwise."""
    return f"{variant}-x{ranks}" if is_parallel(variant) else variant


def variant_of(label: str) -> str:
    """The registered variant of a case's name: ``torch-ddp-x2`` -> ``torch-ddp``; any
    other name is returned as it is."""
    base, sep, k = label.rpartition("-x")
    if sep and k.isdigit() and base in _REGISTRY and _REGISTRY[base].parallel:
        return base
    return label


def framework_of(variant: str) -> str:
    """The framework a variant is written in (no import needed). A plugin's is its
    class's ``framework`` once the class is loaded in this process (a worker loads it to
    build its backends), ``"?"`` until then (the manager never loads one)."""
    entry = _entry(variant)
    if entry.plugin is not None:
        return plugin_entries.framework(entry.plugin)
    return entry.framework


def devices_of(variant: str) -> tuple[str, ...]:
    """The devices a variant has a form for (available here or not); for a plugin, every
    device (its class says which it cannot use when it is built)."""
    return _entry(variant).devices
