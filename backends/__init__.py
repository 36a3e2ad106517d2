"""Backends: one small implementation of gradient descent per framework and style.

``base`` is the protocol every variant implements; ``registry`` maps each public
variant name to the module that builds it (imported on first use only, because its
framework may not be installed: ``import backends`` imports neither torch nor jax);
``numpy_backend``, ``torch_backend`` and ``jax_backend`` are the single-device
variants, ``blocking`` the single-pass block rule, and ``parallel/`` the data-parallel
ones. This package imports nothing from ``suites`` or ``reports``.
"""

from __future__ import annotations

from backends.base import (
    DTYPES,
    MATMUL_PRECISIONS,
    Backend,
    BackendUnavailable,
    ProblemSpec,
    Session,
    TrainResult,
    effective_precision,
)
from backends.registry import (
    DEFAULT_GROUP,
    DEVICES,
    GROUPS,
    VARIANTS,
    BackendInfo,
    block_rows_of,
    case_label,
    closest,
    devices_of,
    framework_of,
    get_backend,
    is_parallel,
    join_world,
    list_backends,
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
    "VARIANTS",
    "Backend",
    "BackendInfo",
    "BackendUnavailable",
    "case_label",
    "ProblemSpec",
    "Session",
    "TrainResult",
    "block_rows_of",
    "closest",
    "devices_of",
    "effective_precision",
    "framework_of",
    "get_backend",
    "is_parallel",
    "join_world",
    "list_backends",
    "precision_settings",
    "variant_of",
    "world_per_process",
]
