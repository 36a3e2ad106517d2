"""What a run covers: problems, backends, devices, sizes, dtype. Parsed and validated once.

The ``gdbench`` command and the pytest options of ``suites/conftest.py`` take the same
strings and go through :func:`parse`, so a bad value gets the same one-line message
either way: the option, the value received and what is allowed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
from dataclasses import asdict, dataclass, field

from backends import (
    DEVICES,
    DTYPES,
    MATMUL_PRECISIONS,
    VARIANTS,
    closest,
    devices_of,
    framework_of,
    is_parallel,
)
from suites import harness
from suites.harness import usable_cores
from suites.problems import PRESETS, Problem, preset, synthetic

PROBLEM_CHOICES = (*PRESETS, "sweep")
DEFAULT_SIZES = (100, 10_000, 1_000_000)
QUICK_SIZES = (100, 10_000)
# A plain `pytest` (smoke) run keeps the sweep small and includes CUDA, so that a machine
# without a GPU shows those variants skipped with their reason; `gdbench run` times the
# full sweep on the CPU unless asked for more.
SMOKE_SIZES = (100, 10_000)
SMOKE_DEVICES = ("cpu", "cuda")
DEFAULT_FEATURES = 16
# What a framework holds on a GPU before any data: its CUDA context, the cuBLAS/cuDNN
# handles and workspaces, the allocator's first pool (about 0.5 GiB for torch and for
# jax on recent GPUs; 1 GiB keeps a margin).
CUDA_FRAMEWORK_BYTES = 2**30
# Temporaries of one epoch, in vectors of n_samples: the prediction, the residual, its
# square and their gradients in autograd (torch-nn's (N, 1) shapes alike); the fused
# and hand-written variants need fewer.
EPOCH_TEMPORARIES = 6


# The valued options of a run, named as `gdbench run --NAME` and `pytest --gdb-NAME`
# (with "-" for "_", see `flag`; plus the flag --quick). `parse` takes them as strings;
# `RunConfig.to_options` gives them back, so the command can hand a run to pytest
# without listing them again.
OPTIONS = (
    "problems", "backends", "devices", "sizes", "features", "epochs", "lr", "dtype",
    "threads", "seed", "matmul_precision", "block_rows", "workers",
)  # fmt: skip


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
        workers: the K of every data-parallel variant (devices or ranks), each a case
            of its own: 1 and 2 where the machine has 2 cores or more.
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
    workers: tuple[int, ...] = field(default_factory=lambda: default_workers())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_options(self) -> dict[str, str]:
        """The option strings that ``parse`` turns back into this config (unset ones left
        out); ``quick`` is a flag, not among them."""
        out = {}
        for name in OPTIONS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, tuple):
                out[name] = ",".join(map(str, value))
            else:
                out[name] = repr(value) if isinstance(value, float) else str(value)
        return out

    def problem_shapes(self) -> list[tuple[str, int, int, int]]:
        """(name, n_samples, n_features, epochs) of every problem, in the order of
        :meth:`build_problems`, without making any data (the worker manager plans with it)."""
        out = []
        preset_shapes = {"toy": (4, 1, 100), "toy-bias": (4, 1, 4000), "toy-20": (20, 1, 20)}
        for name in self.problems:
            if name == "sweep":
                out += [(f"synthetic-{n}x{self.features}", n, self.features, self._epochs(n))
                        for n in self.sizes]  # fmt: skip
            else:
                n, d, epochs = preset_shapes[name]
                out.append((name, n, d, self.epochs or epochs))
        return out

    def build_problems(self) -> list[Problem]:
        """The problems this run covers, in a stable order."""
        return [self.build_problem(name) for name, *_ in self.problem_shapes()]

    def build_problem(self, name: str) -> Problem:
        """One problem of this run by name (a preset, or ``synthetic-NxD`` of the sweep)."""
        if name in PRESETS:
            return self._override(preset(name, self.dtype))
        for shape_name, n, _, _ in self.problem_shapes():
            if shape_name == name:
                return self._synthetic(n)
        raise ValueError(f"problem '{name}' is not part of this run")

    def estimate_bytes(self) -> int:
        """Peak host memory of this run, estimated before anything is allocated.

        Kept for the whole run: every problem's X and y in its dtype. At the peak of one
        case: making the synthetic data (float32 draw + float64 copy), the float64
        reference (a float64 copy of X, and losses and parameters per epoch), the case's
        own copy of the data (so that its peak memory includes it), and the backend's
        copy of the data twice (the timed session and the recorded one), each with its
        per-epoch buffers.
        """
        return max(self.case_bytes(), self.kept_bytes() + self.bandwidth_bytes())

    def kept_bytes(self) -> int:
        """Every problem's X and y, kept for the whole run."""
        item = 4 if self.dtype == "float32" else 8
        return sum(n * (d + 1) * item for n, d, _ in self._shapes())

    def bandwidth_bytes(self) -> int:
        """The two arrays of the memory-bandwidth copy (``COPY_BYTES`` in
        suites/test_epoch_cost.py)."""
        return 2 * (64 if self.quick else 256) * 2**20

    def case_bytes(self) -> int:
        """The kept data plus the peak of the largest single case."""
        item = 4 if self.dtype == "float32" else 8
        peak = 0
        for n, d, epochs in self._shapes():
            make = n * d * (4 + 8) + n * 8
            reference = n * (d + 1) * 8 + 3 * n * 8 + epochs * (d + 2) * 8
            backend = n * (d + 1) * item + 2 * (n * (d + 2) * item + epochs * (d + 2) * item)
            peak = max(peak, make, reference + backend)
        return self.kept_bytes() + peak

    def cuda_frameworks(self) -> list[str]:
        """The installed frameworks of this run that would use the GPU (none without
        cuda); found without importing them."""
        if "cuda" not in self.devices:
            return []
        found = {framework_of(v) for v in self.backends if "cuda" in devices_of(v)}
        return sorted(f for f in found if importlib.util.find_spec(f) is not None)

    def device_bytes(self, timing: bool = True, isolate: str = "variant") -> int:
        """Peak GPU memory of this run, estimated before anything is allocated.

        A worker holds, per framework it runs on cuda, a fixed cost (CUDA context,
        libraries) plus its largest case: X and y, one epoch's temporaries, and the
        per-epoch losses and parameters of the recorded (convergence) session. Workers
        run one at a time, so the peak is one worker's, except with ``--isolate none``
        where one process holds every framework (each allocator keeps what it freed). A
        timed run also has the GPU's copy-bandwidth worker: each installed framework's
        fixed cost and one copy's two arrays (the torch copy frees its arrays first).
        """
        frameworks = self.cuda_frameworks()
        if not frameworks:
            return 0
        item = 4 if self.dtype == "float32" else 8
        case = max(
            (n * (d + 1) + EPOCH_TEMPORARIES * n + epochs * (d + 3)) * item
            for n, d, epochs in self._shapes()
        )
        together = len(frameworks) if isolate == "none" else 1
        need = together * (CUDA_FRAMEWORK_BYTES + case)
        if timing:
            installed = [f for f in ("torch", "jax") if importlib.util.find_spec(f) is not None]
            copies = len(installed) * CUDA_FRAMEWORK_BYTES + self.device_bandwidth_bytes()
            need = need + copies if isolate == "none" else max(need, copies)
        return need

    def device_bandwidth_bytes(self) -> int:
        """The two arrays of the GPU's copy-bandwidth benchmark (``DEVICE_COPY_BYTES``
        in suites/test_epoch_cost.py)."""
        return 2 * (256 * 2**20 if self.quick else 2**30)

    def _shapes(self) -> list[tuple[int, int, int]]:
        """(n_samples, n_features, epochs) of every problem, without building any."""
        return [(n, d, epochs) for _, n, d, epochs in self.problem_shapes()]

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


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def default_workers() -> tuple[int, ...]:
    """K = 1 and 2 where this process may use 2 cores or more, else 1."""
    return (1, 2) if len(usable_cores()) >= 2 else (1,)


def gpu_count() -> int:
    """GPUs visible to CUDA here: ``CUDA_VISIBLE_DEVICES``'s entries when set, else the
    ones ``nvidia-smi`` lists (0 without a driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=harness.NVIDIA_SMI_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(proc.stdout.split()) if proc.returncode == 0 else 0


def check_workers(run: RunConfig, cores: int | None = None, gpus: int | None = None) -> None:
    """Refuse K larger than what can hold K workers: the usable cores on the CPU (one
    each), the visible GPUs on cuda, or the rows of a problem (one each).

    Raises:
        ConfigError: naming K, what is available and how to choose.
    """
    if not any(is_parallel(v) for v in run.backends):
        return
    k = max(run.workers)
    cores = len(usable_cores()) if cores is None else cores
    if "cpu" in run.devices and k > cores:
        raise ConfigError(
            f"--workers {k} needs {k} cores (one per data-parallel worker); this process "
            f"may use {cores}: choose --workers up to {cores}"
        )
    if "cuda" in run.devices:
        gpus = gpu_count() if gpus is None else gpus
        if k > gpus:
            raise ConfigError(
                f"--workers {k} on cuda needs {k} GPUs; {gpus} visible: choose --workers "
                f"up to {max(gpus, 1)}"
            )
    smallest = min((n, name) for name, n, _, _ in run.problem_shapes())
    if k > smallest[0]:
        raise ConfigError(
            f"--workers {k} splits the rows of {smallest[1]} ({smallest[0]} rows) into {k} "
            f"shards: choose --workers up to {smallest[0]} or larger problems"
        )


def free_gpu_memory() -> int | None:
    """Free bytes on the GPU the CUDA variants will use (the first visible one), from
    ``nvidia-smi`` so that no framework is started for it; None without a GPU."""
    fields = harness.nvidia_smi("memory.free")
    try:
        return int(float(fields[0]) * 2**20) if fields else None  # MiB
    except ValueError:
        return None


def check_memory(
    run: RunConfig,
    available: int | None = None,
    gpu_free: int | None = None,
    *,
    timing: bool = True,
    isolate: str = "variant",
) -> None:
    """Refuse a run whose estimated peak memory exceeds 90% of what is available: host
    memory, and with ``--devices cuda`` the GPU's free memory.

    Args:
        available: host bytes available (default: read from the OS).
        gpu_free: free GPU bytes (default: read with nvidia-smi when the run uses cuda).
        timing: a timed run (``gdbench run``), with the copy-bandwidth benchmarks.
        isolate: the run's ``--isolate`` (``none`` puts every framework in one process).

    Raises:
        ConfigError: with the estimate and the free memory.
    """
    largest = max(run.sizes) if "sweep" in run.problems else None
    what = f"--sizes up to {largest:,} with --features {run.features}" if largest else "this run"
    free = available_memory() if available is None else available
    need = run.estimate_bytes()
    if free is not None and need > 0.9 * free:
        raise ConfigError(
            f"{what} needs about {need / 1e9:.1f} GB of memory (data, its float64 reference "
            f"and the backends' copies); this machine has {free / 1e9:.1f} GB available: "
            "choose smaller --sizes, --features or --epochs"
        )
    frameworks = run.cuda_frameworks()
    if not frameworks:
        return
    gpu = free_gpu_memory() if gpu_free is None else gpu_free
    need = run.device_bytes(timing, isolate)
    if gpu is not None and need > 0.9 * gpu:
        raise ConfigError(
            f"{what} needs about {need / 1e9:.1f} GB of GPU memory ({' and '.join(frameworks)}: "
            f"data, buffers and {CUDA_FRAMEWORK_BYTES / 2**30:g} GiB each for the CUDA context); "
            f"the GPU has {gpu / 1e9:.1f} GB free: choose smaller --sizes, --features or "
            "--epochs, or fewer --backends on cuda"
        )


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


def positive_number(flag: str, value: str, what: str = "a positive finite number") -> float:
    """``value`` as a finite number above zero, or a ConfigError naming ``flag``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{flag} must be {what}, got '{value}'")
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
    workers: str | None = None,
    default_sizes: tuple[int, ...] = DEFAULT_SIZES,
    default_devices: tuple[str, ...] = ("cpu",),
) -> RunConfig:
    """Build a :class:`RunConfig` from option strings; ``None`` means the default.

    Raises:
        ConfigError: a value is not allowed; the message names flag, value and choices.
    """
    kw: dict[str, object] = {"quick": quick}
    if problems is not None:
        kw["problems"] = _names("--problems", problems, PROBLEM_CHOICES, allow_all=True)
    if backends is not None:
        kw["backends"] = _names("--backends", backends, VARIANTS, allow_all=True)
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
            kw["seed"] = int(seed)
        except ValueError:
            raise ConfigError(f"--seed must be an integer, got '{seed}'") from None
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
    if workers is not None:
        items = [w.strip() for w in workers.split(",") if w.strip()]
        if not items:
            raise ConfigError(f"--workers needs at least one positive integer, got '{workers}'")
        kw["workers"] = tuple(sorted(dict.fromkeys(positive_int("--workers", w) for w in items)))
    return RunConfig(**kw)  # type: ignore[arg-type]
