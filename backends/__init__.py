"""Backends: one small implementation of gradient descent per framework and style.

``base`` is the protocol every variant implements; ``registry`` maps each public
variant name to the module that builds it (imported on first use only, because its
framework may not be installed: ``import backends`` imports neither torch nor jax);
``numpy_backend``, ``torch_backend`` and ``jax_backend`` are the single-device
variants, ``blocking`` the single-pass block rule, ``parallel/`` the data-parallel
ones, and ``plugins`` finds the variants of other packages (the ``gdbench.variants``
entry points). This package imports nothing from ``suites`` or ``reports``.
"""

from __future__ import annotations

from backends.base import (
    DTYPES,
    MATMUL_PRECISIONS,
    Backend,
    BackendUnavailable,
    BadResult,
    ProblemSpec,
    Session,
    TrainResult,
    effective_precision,
    first_line,
)
from backends.registry import (
    DEFAULT_GROUP,
    DEVICES,
    GROUPS,
    PLUGIN_GROUP,
    VARIANTS,
    BackendInfo,
    all_variants,
    block_rows_of,
    case_label,
    check_result,
    closest,
    devices_of,
    framework_of,
    get_backend,
    installed_plugins,
    is_parallel,
    is_plugin,
    join_world,
    list_backends,
    plugin_of,
    plugin_variants,
    precision_settings,
    variant_of,
    world_per_process,
)

__all__ = [
    "DEFAULT_GROUP",
    "GROUPS",
    "DEVICES",
    "DTYPES",
    "MATMUL_PRECISIONS",
    "PLUGIN_GROUP",
    "VARIANTS",
    "Backend",
    "BackendInfo",
    "BackendUnavailable",
    "first_line",
    "BadResult",
    "case_label",
    "ProblemSpec",
    "Session",
    "TrainResult",
    "all_variants",
    "block_rows_of",
    "check_result",
    "closest",
    "devices_of",
    "effective_precision",
    "framework_of",
    "get_backend",
    "installed_plugins",
    "is_parallel",
    "is_plugin",
    "join_world",
    "list_backends",
    "plugin_of",
    "plugin_variants",
    "precision_settings",
    "variant_of",
    "world_per_process",
]
