"""Variants from other packages: the entry points of the ``gdbench.variants`` group.

A distribution declares, in its ``pyproject.toml``::

    [project.entry-points."gdbench.variants"]
    numpy-einsum = "gdbench_einsum:NumpyEinsum"

The entry point's name is the variant's name; the class implements
:class:`backends.base.Backend` and is built as ``Class(device)`` (docs/plugins.md).
:func:`discover` reads only the installed distributions' metadata: a plugin's module is
imported when one of its backends is built (:func:`build`), which is a worker's job,
never the manager's (its module may import torch or jax).

A plugin that cannot be imported or built is *unavailable*, with the error, as a variant
of a missing framework is: it never breaks a run. One whose name gdbench cannot give it
(a built-in variant's, a group's, a name two distributions claim, or not a name at all)
is *refused*: it is never imported, and selecting it is bad input.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from backends.base import Backend, BackendUnavailable, first_line

ENTRY_POINT_GROUP = "gdbench.variants"
# A plugin's framework until its class has been loaded in this process (the manager
# never loads one): the class's ``framework`` attribute says it.
UNKNOWN_FRAMEWORK = "?"
# What --backends can carry, and a case id (variant@device-problem) can hold
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Plugin:
    """One claim of the ``gdbench.variants`` group.

    Attributes:
        name: the variant's name (the entry point's).
        target: ``"module:Class"``, the class that implements the variant.
        dist: the distribution that declares it, with its version (``"gdbench-einsum
            0.1.0"``).
        refused: why gdbench will not run it, or ``""``.
    """

    name: str
    target: str
    dist: str
    refused: str = ""
    entry_point: EntryPoint | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """``plugin 'numpy-einsum' of gdbench-einsum 0.1.0 (gdbench_einsum:NumpyEinsum)``."""
        return f"plugin '{self.name}' of {self.dist} ({self.target})"


def _dist(ep: EntryPoint) -> str:
    dist = ep.dist
    if dist is None:  # an entry point made by hand, not read from a distribution
        return "an unknown distribution"
    return f"{dist.name} {dist.version}"


def _refusal(
    ep: EntryPoint, claims: list[EntryPoint], variants: Collection[str], groups: Collection[str]
) -> str:
    """Why the claim ``ep`` cannot be a variant of its own, or ``""``."""
    dist = ep.dist.name if ep.dist is not None else "the distribution"
    fix = f"rename the entry point in {dist}'s {ENTRY_POINT_GROUP} group, or uninstall {dist}"
    if ep.name in variants:
        return f"'{ep.name}' is the name of a built-in variant, which no plugin may take: {fix}"
    if ep.name in groups:
        return f"'{ep.name}' is the name of a group of --backends: {fix}"
    if not _NAME.fullmatch(ep.name):
        return (
            f"'{ep.name}' is not a variant name (letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit): {fix}"
        )
    if len(claims) > 1:
        others = ", ".join(sorted(_dist(c) for c in claims))
        return f"'{ep.name}' is claimed by {len(claims)} distributions ({others}): uninstall one"
    if not ep.attr:
        return f"'{ep.value}' names a module, not a class: the entry point must be module:Class"
    return ""


def discover(variants: Collection[str], groups: Collection[str]) -> tuple[Plugin, ...]:
    """Every claim of the ``gdbench.variants`` group among the installed distributions,
    by name (then distribution), refused ones too. Reads metadata only: no plugin module
    is imported.

    Args:
        variants: the built-in variants' names, which no plugin may take.
        groups: the names ``--backends`` gives groups (and ``all``), likewise.
    """
    claims: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        claims.setdefault(ep.name, []).append(ep)
    return tuple(
        Plugin(ep.name, ep.value, _dist(ep), _refusal(ep, eps, variants, groups), ep)
        for _, eps in sorted(claims.items())
        for ep in sorted(eps, key=_dist)
    )


# The classes loaded in this process, by variant: a plugin's framework is read from its
# class once loaded (framework_of), without loading one only to ask.
_loaded: dict[str, type] = {}


def load(plugin: Plugin) -> type:
    """Import the plugin's module and return its class.

    Raises:
        BackendUnavailable: it is refused, or importing it raised (any error: a missing
            framework, a syntax error, a class that is not there), with that error.
    """
    if plugin.refused:
        raise BackendUnavailable(f"{plugin.describe()} is refused: {plugin.refused}")
    if plugin.name not in _loaded:
        assert plugin.entry_point is not None
        try:
            cls = plugin.entry_point.load()
        except Exception as err:  # noqa: BLE001 - whatever a plugin raises, it is unavailable
            raise BackendUnavailable(
                f"{plugin.describe()} cannot be imported: {first_line(err)}"
            ) from None
        _loaded[plugin.name] = cls
    return _loaded[plugin.name]


def framework(plugin: Plugin) -> str:
    """The framework its class names, once loaded in this process; else
    :data:`UNKNOWN_FRAMEWORK` (nothing is imported to find out)."""
    cls = _loaded.get(plugin.name)
    value = getattr(cls, "framework", None)
    return value if isinstance(value, str) and value else UNKNOWN_FRAMEWORK


def build(plugin: Plugin, device: str) -> Backend:
    """The plugin's backend on ``device``: ``Class(device)``, checked against the protocol's
    attributes.

    Raises:
        BackendUnavailable: it cannot be imported; its class raised BackendUnavailable
            (its reason), or any other error while being built (with that error); or
            the backend's ``variant``, ``framework`` or ``device`` is not what the
            protocol asks.
    """
    cls = load(plugin)
    try:
        backend = cls(device)
    except BackendUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - a plugin that cannot be built is unavailable
        raise BackendUnavailable(
            f"{plugin.describe()} cannot be built on {device}: {first_line(err)}"
        ) from None
    wrong = _protocol_error(backend, plugin.name, device)
    if wrong:
        raise BackendUnavailable(f"{plugin.describe()} is refused: {wrong}")
    return backend


def _protocol_error(backend: object, name: str, device: str) -> str:
    """What the built backend's attributes break of :class:`Backend`, or ``""``."""
    variant = getattr(backend, "variant", None)
    if variant != name:
        return f"its class's variant is {variant!r}; it must be the entry point's name, {name!r}"
    value = getattr(backend, "framework", None)
    if not isinstance(value, str) or not value:
        return f"its framework is {value!r}; it must name one, e.g. 'numpy'"
    if getattr(backend, "device", None) != device:
        built = getattr(backend, "device", None)
        return f"built for {device!r}, its device is {built!r}"
    if not callable(getattr(backend, "prepare", None)):
        return "it has no prepare(problem, *, record_params=False) method"
    return ""
