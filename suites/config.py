"""What a run covers: problems, backends, devices, sizes, dtype. Parsed and validated once.

The ``gdbench`` command and the pytest options of ``suites/bench/conftest.py`` take the same
strings and go through :func:`parse`, so a bad value gets the same one-line message
either way: the option, the value received and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from backends import (
    DEVICES,
    DTYPES,
    GROUPS,
    MATMUL_PRECISIONS,
    PLUGIN_GROUP,
    VARIANTS,
    closest,
    installed_plugins,
    is_parallel,
    plugin_variants,
)
from suites import data as data_files
from suites.machine import usable_cores
from suites.problems import PRESETS, Problem, preset, stability_limit, synthetic

PROBLEM_CHOICES = (*PRESETS, "sweep")
DEFAULT_SIZES = (100, 10_000, 1_000_000)
QUICK_SIZES = (100, 10_000)
# A plain `pytest` (smoke) run keeps the sweep small and includes CUDA, so that a machine
# without a GPU shows those variants skipped with their reason; `gdbench run` times the
# full sweep on the CPU unless asked for more.
SMOKE_SIZES = (100, 10_000)
SMOKE_DEVICES = ("cpu", "cuda")
DEFAULT_FEATURES = 16


# The valued options of a run, named as `gdbench run --NAME` and `pytest --gdb-NAME`
# (with "-" for "_", see `flag`; plus the flag --quick). `parse` takes them as strings;
# `RunConfig.to_options` gives them back, so the command can hand a run to pytest
# without listing them again.
OPTIONS = (
    "problems", "backends", "devices", "sizes", "features", "epochs", "lr", "dtype",
    "threads", "seed", "matmul_precision", "block_rows", "ranks", "shard_rows", "target",
    "data", "target_column",
)  # fmt: skip
DEFAULT_SHARD_ROWS = 1_000  # a data-parallel case runs where each rank gets this many rows
DEFAULT_TARGET = 1e-6  # time to accuracy: excess loss at most this share of the initial
DATA_EPOCHS = 100  # a data file's epochs unless --epochs


def flag(name: str) -> str:
    """The command-line spelling of an option: ``matmul_precision`` -> ``matmul-precision``."""
    return name.replace("_", "-")


class ConfigError(ValueError):
    """A bad option value; ``str(err)`` is the one line to show the user."""


@dataclass(frozen=True)
class RunConfig:
    """A validated selection of what to run.

    Attributes:
        problems: names from ``PROBLEM_CHOICES``; ``"sweep"`` expands to ``sizes``.
        backends: variant names (``"all"`` already expanded).
        devices: ``"cpu"`` and/or ``"cuda"``.
        sizes: n_samples of the synthetic sweep.
        features: n_features of the synthetic sweep.
        epochs: overrides every problem's epochs when set.
        lr: overrides every problem's learning rate when set.
        dtype: ``"float32"`` or ``"float64"``.
        quick: fewer rounds and small sizes, for smoke runs.
        threads: intra-op threads for every framework.
        seed: seed of the synthetic data.
        matmul_precision: how float32 products are computed: ``"float32"`` (full, the
            default) or ``"tf32"`` (tensor cores of Ampere and later GPUs; the CPU
            computes full float32 either way). Convergence is judged with the tolerance
            of the precision asked for (``suites.convergence.tolerance``).
        block_rows: rows per block of the single-pass variants (``*-blocked``); None
            chooses it per problem from the machine's L2 cache (``backends/blocking.py``).
        ranks: the K of every data-parallel variant (devices or ranks), each a case
            of its own: 1 and 2 where the machine has 2 cores or more.
        shard_rows: the fewest rows per rank (or device) for which a data-parallel case
            runs: a problem too small to split is not run at that K, and where no K > 1
            splits it, K = 1 (the scaling baseline) is not run either.
        target: the accuracy of the report's time to accuracy: the first epoch whose
            excess loss over the least-squares optimum is at most this share of the
            initial excess.
        data: a data file (``suites.data``) that is a problem of this run, or the
            folder of its saved arrays; named after the file.
        target_column: the column of a table (``.csv``, ``.parquet``) to predict.
        standardize: whether the data file's features are scaled to zero mean and unit
            variance (a flag, like ``quick``).
    """

    problems: tuple[str, ...] = PROBLEM_CHOICES
    backends: tuple[str, ...] = VARIANTS
    devices: tuple[str, ...] = ("cpu",)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    features: int = DEFAULT_FEATURES
    epochs: int | None = None
    lr: float | None = None
    dtype: str = "float32"
    quick: bool = False
    threads: int = field(default_factory=lambda: len(usable_cores()))
    seed: int = 0
    matmul_precision: str = "float32"
    block_rows: int | None = None
    ranks: tuple[int, ...] = field(default_factory=lambda: default_ranks())
    shard_rows: int = DEFAULT_SHARD_ROWS
    target: float = DEFAULT_TARGET
    data: str | None = None
    target_column: str | None = None
    standardize: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_options(self) -> dict[str, str]:
        """The option strings that ``parse`` turns back into this config (unset ones left
        out); ``quick`` is a flag, not among them."""
        out = {}
        for name in OPTIONS:
            value = getattr(self, name)
            if value is None or value == ():  # no problems but a data file's: the default
                continue
            if isinstance(value, tuple):
                out[name] = ",".join(map(str, value))
            else:
                out[name] = repr(value) if isinstance(value, float) else str(value)
        return out

    def ks(self, variant: str, n_samples: int) -> tuple[int, ...]:
        """The K of ``variant``'s cases on a problem of ``n_samples`` rows: (1,) for a
        single-device variant; for a data-parallel one, each K of ``ranks`` that
        leaves every rank ``shard_rows`` rows or more, and K = 1 only beside such a K
        (or when K = 1 is all that was asked)."""
        if not is_parallel(variant):
            return (1,)
        split = tuple(k for k in self.ranks if k > 1 and n_samples // k >= self.shard_rows)
        if split or self.ranks == (1,):
            return tuple(k for k in self.ranks if k == 1 or k in split)
        return ()

    def not_split(self) -> list[dict[str, object]]:
        """The data-parallel cases left out because their problem is too small to split,
        one entry per variant and problem, with the reason."""
        out = []
        for name, n, _, _ in self.problem_shapes():
            for variant in self.backends:
                if not is_parallel(variant) or self.ks(variant, n) == tuple(self.ranks):
                    continue
                skipped = [k for k in self.ranks if k not in self.ks(variant, n)]
                split = [k for k in skipped if k > 1]
                why = (
                    f"{n:,} rows give fewer than {self.shard_rows:,} per rank at K = "
                    + ", ".join(map(str, split))
                    + " (--shard-rows)"
                    + ("; K = 1, its baseline, left out too" if 1 in skipped else "")
                )
                out.append({"variant": variant, "problem": name, "n_samples": n,
                            "ranks": skipped, "reason": why})  # fmt: skip
        return out

    def problem_shapes(self) -> list[tuple[str, int, int, int]]:
        """(name, n_samples, n_features, epochs) of every problem, in the order of
        :meth:`build_problems`, without making any data (the worker manager plans with it)."""
        out = []
        for name in self.problems:
            if name == "sweep":
                out += [(f"synthetic-{n}x{self.features}", n, self.features, self._epochs(n))
                        for n in self.sizes]  # fmt: skip
            else:
                p = preset(name)  # a few rows: its shape is read from the problem itself
                out.append((name, p.n_samples, p.n_features, self.epochs or p.epochs))
        if self.data is not None:
            d = self.data_file()
            out.append((d.name, d.rows, len(d.features), self.epochs or DATA_EPOCHS))
        return out

    def data_file(self) -> data_files.Data:
        """The checked arrays of ``--data`` (read once per process)."""
        if self.data is None:
            raise ValueError("this run has no data file")
        return data_files.load(self.data, self.target_column, self.standardize)

    def build_problems(self) -> list[Problem]:
        """The problems this run covers, in a stable order."""
        return [self.build_problem(name) for name, *_ in self.problem_shapes()]

    def build_problem(self, name: str) -> Problem:
        """One problem of this run by name (a preset, or ``synthetic-NxD`` of the sweep)."""
        if name in PRESETS:
            return self._override(preset(name, self.dtype))
        if self.data is not None and name == self.data_file().name:
            d = self.data_file()
            lr = self.lr or 0.5 * stability_limit(d.X, bias=True)  # as the sweep's
            return Problem(name, d.X, d.y, bias=True, lr=lr, epochs=self.epochs or DATA_EPOCHS,
                           dtype=self.dtype)  # fmt: skip
        for shape_name, n, _, _ in self.problem_shapes():
            if shape_name == name:
                return self._synthetic(n)
        raise ValueError(f"problem '{name}' is not part of this run")

    def _epochs(self, n: int) -> int:
        return self.epochs or (100 if n < 100_000 else 20)

    def _synthetic(self, n: int) -> Problem:
        # Gaussian data with lr = 1/λ_max reaches the optimum within ~κ·ln(1/tol) epochs;
        # κ ≈ ((1+√(D/N)) / (1−√(D/N)))² is largest for the smallest N.
        return synthetic(
            n, self.features, self.seed, epochs=self._epochs(n), dtype=self.dtype, lr=self.lr
        )

    def _override(self, problem: Problem) -> Problem:
        changes: dict[str, object] = {}
        if self.epochs is not None:
            changes["epochs"] = self.epochs
        if self.lr is not None:
            changes["lr"] = self.lr
        return problem.replace(**changes) if changes else problem


def default_ranks() -> tuple[int, ...]:
    """K = 1 and 2 where this process may use 2 cores or more, else 1."""
    return (1, 2) if len(usable_cores()) >= 2 else (1,)


def _names(flag: str, value: str, choices: tuple[str, ...], allow_all: bool = False) -> tuple:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ConfigError(
            f"{flag} needs at least one name, got '{value}'; choose from: {', '.join(choices)}"
        )
    if allow_all and items == ["all"]:
        return choices
    for item in items:
        if item not in choices:
            raise ConfigError(
                f"{flag}: unknown value '{item}'{closest(item, choices)}; choose from: "
                f"{', '.join(choices)}" + (" or all" if allow_all else "")
            )
    return tuple(dict.fromkeys(items))


def variant_names(value: str) -> tuple[str, ...]:
    """``--backends``: variant names and groups (``GROUPS``, and ``plugins``: the variants
    of other packages) mixed, or ``all`` (the built-in variants, then the plugins),
    expanded to variants in the order given (a group's in the registry's order), each
    once. Reads the installed packages' metadata; imports no plugin.

    Raises:
        ConfigError: an empty list, or a name that is neither a variant nor a group; a
            selection that takes in a refused plugin (``plugins`` or ``all`` while one
            is installed, or a name only a refused one claims), naming it.
    """
    plugins = plugin_variants()
    groups = {**GROUPS, PLUGIN_GROUP: plugins}
    choices = (*VARIANTS, *plugins, *groups)
    asked = [v.strip() for v in value.split(",")]
    refused = [p for p in installed_plugins() if p.refused]
    for item in asked:
        # all and plugins take in every refused plugin; a name, one that only it claims
        hits = [p for p in refused if item in ("all", PLUGIN_GROUP) or p.name == item]
        if hits and item not in (*VARIANTS, *plugins, *GROUPS):
            raise ConfigError(
                f"--backends {item}: "
                + "; ".join(f"{p.describe()} is refused: {p.refused}" for p in hits)
            )
    if "all" in asked:  # all, alone or beside others
        return (*VARIANTS, *plugins)
    items = _names("--backends", value, choices, allow_all=True)
    selected = tuple(dict.fromkeys(v for item in items for v in groups.get(item, (item,))))
    if not selected:  # only `plugins`, and none is installed
        raise ConfigError(
            f"--backends {value}: no variant from another package is installed (a "
            "distribution with entry points in the gdbench.variants group: docs/plugins.md)"
        )
    return selected


def positive_number(flag: str, value: str, what: str = "a positive finite number") -> float:
    """``value`` as a finite number above zero, or a ConfigError naming ``flag``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{flag} must be {what}, got '{value}'")
    return number


def accuracy_target(value: str) -> float:
    """--target: a share of the initial excess loss, strictly between 0 and 1."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < 1:
        raise ConfigError(
            f"--target: '{value}' is not a share of the initial excess loss; give a number "
            "between 0 and 1 (exclusive), e.g. 1e-6"
        )
    return number


def positive_int(flag: str, value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and number >= 1):
        raise ConfigError(f"{flag} must be a positive integer, got '{value}'")
    return int(number)


def parse(
    *,
    problems: str | None = None,
    backends: str | None = None,
    devices: str | None = None,
    sizes: str | None = None,
    features: str | None = None,
    epochs: str | None = None,
    lr: str | None = None,
    dtype: str | None = None,
    quick: bool = False,
    threads: str | None = None,
    seed: str | None = None,
    matmul_precision: str | None = None,
    block_rows: str | None = None,
    ranks: str | None = None,
    shard_rows: str | None = None,
    target: str | None = None,
    data: str | None = None,
    target_column: str | None = None,
    standardize: bool = False,
    default_sizes: tuple[int, ...] = DEFAULT_SIZES,
    default_devices: tuple[str, ...] = ("cpu",),
    default_backends: tuple[str, ...] = VARIANTS,
    default_shard_rows: int = DEFAULT_SHARD_ROWS,
) -> RunConfig:
    """Build a :class:`RunConfig` from option strings; ``None`` means the default.

    Raises:
        ConfigError: a value is not allowed; the message names flag, value and choices.
    """
    kw: dict[str, object] = {"quick": quick, "backends": default_backends}
    if problems is not None:
        kw["problems"] = _names("--problems", problems, PROBLEM_CHOICES, allow_all=True)
    if backends is not None:
        kw["backends"] = variant_names(backends)
    kw["devices"] = default_devices
    if devices is not None:
        kw["devices"] = _names("--devices", devices, DEVICES, allow_all=True)
    if sizes is not None:
        items = [s.strip() for s in sizes.split(",") if s.strip()]
        if not items:
            raise ConfigError(f"--sizes needs at least one positive integer, got '{sizes}'")
        kw["sizes"] = tuple(dict.fromkeys(positive_int("--sizes", s) for s in items))
    else:
        kw["sizes"] = QUICK_SIZES if quick else default_sizes
    if features is not None:
        kw["features"] = positive_int("--features", features)
    if epochs is not None:
        kw["epochs"] = positive_int("--epochs", epochs)
    if lr is not None:
        kw["lr"] = positive_number("--lr", lr)
    if dtype is not None:
        if dtype not in DTYPES:
            raise ConfigError(
                f"--dtype: unknown value '{dtype}'{closest(dtype, DTYPES)}; choose from: "
                f"{', '.join(DTYPES)}"
            )
        kw["dtype"] = dtype
    if threads is not None:
        kw["threads"] = positive_int("--threads", threads)
    if seed is not None:
        try:
            number = int(seed)
        except ValueError:
            number = -1
        if number < 0:  # numpy's generators take no negative seed
            raise ConfigError(f"--seed must be an integer of 0 or more, got '{seed}'")
        kw["seed"] = number
    if matmul_precision is not None:
        if matmul_precision not in MATMUL_PRECISIONS:
            raise ConfigError(
                f"--matmul-precision: unknown value '{matmul_precision}'"
                f"{closest(matmul_precision, MATMUL_PRECISIONS)}; choose from: "
                f"{', '.join(MATMUL_PRECISIONS)}"
            )
        kw["matmul_precision"] = matmul_precision
    if block_rows is not None:
        kw["block_rows"] = positive_int("--block-rows", block_rows)
    if ranks is not None:
        items = [w.strip() for w in ranks.split(",") if w.strip()]
        if not items:
            raise ConfigError(f"--ranks needs at least one positive integer, got '{ranks}'")
        kw["ranks"] = tuple(sorted(dict.fromkeys(positive_int("--ranks", w) for w in items)))
    kw["shard_rows"] = default_shard_rows
    if shard_rows is not None:
        kw["shard_rows"] = positive_int("--shard-rows", shard_rows)
    if target is not None:
        kw["target"] = accuracy_target(target)
    if data is None:
        for flag_name, given in (
            ("--target-column", target_column),
            ("--standardize", standardize),
        ):
            if given:
                raise ConfigError(f"{flag_name} is for a data file: give it with --data PATH")
    else:
        kw |= {"data": data, "target_column": target_column, "standardize": standardize}
        if problems is None:  # the file alone, unless --problems asks for more
            kw["problems"] = ()
    cfg = RunConfig(**kw)  # type: ignore[arg-type]
    if data is not None:
        try:
            name = cfg.data_file().name
        except data_files.DataError as err:
            raise ConfigError(str(err)) from None
        if name in [n for n, *_ in cfg.problem_shapes()][:-1]:
            raise ConfigError(f"--data {data}: its problem would be called '{name}', as one "
                              "of --problems; rename the file")  # fmt: skip
    return cfg
