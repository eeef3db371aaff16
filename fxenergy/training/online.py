"""Seed 002's online estimators: project a training run's energy from its first epochs.

Seed 002 (del Rey et al. 2024, §4.3) observes that epoch duration and power settle after a warm-up
(in 90% of its runs by epoch 10) and proposes, with a window of ``w`` stable epochs:

* **Eq. 1, power-based**: ``E = P̄_w × t``: the window's average power times the training duration
  (here projected: elapsed time + the window's mean epoch duration × the epochs still to run);
* **Eq. 2, epoch-energy-based**: ``E = E_w × s / w + E_u``: the window's energy scaled to the ``s``
  stable epochs of the plan, plus the energy ``E_u`` of the initial, unstable epochs.

The stabilising epoch is found with FLUSS semantic segmentation (the method the seed uses, from the
``stumpy`` library: optional dependency ``fxenergy[online]``, used for long sample-level traces; the
short per-epoch series use a NumPy form of the same algorithm, :func:`fluss_regime`, because stumpy's
JIT compile takes minutes on a small machine) on the per-epoch power series, or by the seed's simple
rule "epoch 10" (the tracker's default: on the synthetic warm-up traces of
``benchmarks/training_online.py`` the rule beats FLUSS run on the epochs seen so far). The band is the projection of the
window's lowest and highest epoch (energy or power): a spread, not a confidence interval.

:class:`TrainingTracker` does this inside a plain PyTorch loop (``with tracker: ... tracker.epoch_end()``);
:func:`lightning_callback` and :func:`transformers_callback` wrap it for PyTorch Lightning and
Hugging Face ``Trainer`` (each import-guarded). An ``energy_budget_j`` turns on seed 002 §5.4's
energy-aware early stopping: when the projection exceeds the budget, ``tracker.should_stop`` becomes
True (and the callbacks stop the trainer).

Meters: :class:`Meter` is a two-method interface (``read_j`` → cumulative joules or None, ``name``).
:func:`auto_meter` tries NVML (total energy counter), then RAPL (``/sys/class/powercap``), then falls back
to :class:`WallClockMeter`, which measures time only; energy is then ``assumed_power_w × time`` when the
caller gives a power (say from ``estimate_training``), and the projection says so. The measurement
engineer's ``fxenergy.measure`` meters can be passed as any object with ``read_j()`` and ``name``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fxenergy.errors import FxEnergyError, UserInputError

__all__ = ["Meter", "WallClockMeter", "RAPLMeter", "NVMLMeter", "auto_meter", "EpochRecord", "Projection",
           "stabilising_epoch", "fluss_regime", "project", "TrainingTracker", "EnergyBudgetExceeded", "lightning_callback",
           "transformers_callback", "RULE_STABLE_EPOCH", "RULE_WINDOW"]

RULE_STABLE_EPOCH = 10  # seed 002: power is stable from epoch 10 in >= 90% of runs (Fig. 9)
RULE_WINDOW = 5  # seed 002: w = 5 is enough for a low error (Fig. 10)


class Meter(Protocol):
    name: str

    def read_j(self) -> float | None:
        """Cumulative energy in joules since an arbitrary origin, or None when this meter has none."""


class WallClockMeter:
    """Time only: no energy counter is readable."""

    name = "wall clock (no energy meter)"

    def read_j(self) -> float | None:
        return None


class RAPLMeter:
    """Intel RAPL package energy counters under /sys/class/powercap (wrap-around handled)."""

    name = "RAPL package energy"

    def __init__(self, root: str = "/sys/class/powercap"):
        self.zones = [p for p in sorted(Path(root).glob("intel-rapl:*")) if p.name.count(":") == 1]
        self._last: list[int] = []
        self._acc = 0.0
        if not self.zones or self._raw() is None:
            raise OSError("RAPL energy counters not readable")

    def _raw(self) -> list[int] | None:
        try:
            return [int((z / "energy_uj").read_text()) for z in self.zones]
        except (OSError, ValueError):
            return None

    def read_j(self) -> float | None:
        raw = self._raw()
        if raw is None:
            return None
        if self._last:
            for z, (a, b) in enumerate(zip(self._last, raw)):
                if b < a:  # wrapped
                    b += int((self.zones[z] / "max_energy_range_uj").read_text())
                self._acc += (b - a) / 1e6
        self._last = raw
        return self._acc


class NVMLMeter:
    """NVML's total energy counter of one GPU (Volta and newer; ``fxenergy[nvml]``)."""

    name = "NVML total energy"

    def __init__(self, index: int = 0):
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(self._h)  # raises where unsupported

    def read_j(self) -> float | None:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h) / 1e3  # mJ


def auto_meter() -> Any:
    """The first readable meter: NVML, RAPL, else the wall clock (time only)."""
    for cls in (NVMLMeter, RAPLMeter):
        try:
            return cls()
        except Exception:  # noqa: BLE001 - any failure means "not readable here"
            continue
    return WallClockMeter()


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int  # 1-based
    duration_s: float
    energy_j: float | None  # None: no meter and no assumed power

    @property
    def power_w(self) -> float | None:
        return None if self.energy_j is None or self.duration_s <= 0 else self.energy_j / self.duration_s


@dataclass(frozen=True)
class Projection:
    """The run's projected totals after ``epochs_seen`` epochs, of ``planned_epochs``."""

    epochs_seen: int
    planned_epochs: int
    stable_from: int  # 1-based epoch where power is taken as stable
    window: int  # w: stable epochs used
    detector: str  # "fluss" or "rule"
    duration_s: float  # projected training duration
    power_based_j: float | None  # Eq. 1
    epoch_energy_based_j: float | None  # Eq. 2
    band_j: tuple[float, float] | None  # Eq. 2 with the window's lowest / highest epoch
    energy_source: str
    notes: tuple[str, ...] = ()

    @property
    def energy_j(self) -> float | None:
        """The headline figure: Eq. 2 (the seed's best online estimator, Table 10)."""
        return self.epoch_energy_based_j


def stabilising_epoch(values: Sequence[float], *, method: str = "auto", min_epochs: int = 12) -> tuple[int | None, str]:
    """``(first stable epoch (1-based), detector)`` for a per-epoch series (power, or duration).

    ``method``: ``"fluss"`` (stumpy's FLUSS: the regime change of the series; the first epoch after it),
    ``"rule"`` (seed 002's epoch 10), or ``"auto"`` (= FLUSS).
    FLUSS needs ``min_epochs`` points: before that the epoch is None (not yet known). A change FLUSS
    places in the second half of the series is no warm-up: the rule's epoch 10 is used (detector
    ``"fluss/rule"``).
    """
    if method not in ("auto", "fluss", "rule"):
        raise UserInputError(f"stabilisation method must be auto, fluss or rule, got {method!r}")
    x = np.asarray(values, dtype=float)
    if method == "rule":
        return RULE_STABLE_EPOCH, "rule"
    if len(x) < min_epochs:
        return None, "fluss"
    if np.ptp(x) == 0:
        return 1, "fluss"
    loc = fluss_regime(x, 3)  # subsequence length in epochs: a warm-up lasts a few epochs
    if loc > len(x) // 2:
        return RULE_STABLE_EPOCH, "fluss/rule"
    return max(loc + 1, 1), "fluss"


def _matrix_profile_index(x: np.ndarray, m: int) -> np.ndarray:
    """Nearest-neighbour index of every length-``m`` subsequence (z-normalised Euclidean distance,
    exclusion zone ceil(m/4) as stumpy's default); brute force, for the short per-epoch series here."""
    sub = np.lib.stride_tricks.sliding_window_view(x, m)
    mu, sd = sub.mean(1, keepdims=True), sub.std(1, keepdims=True)
    flat = sd[:, 0] < 1e-12
    z = np.where(flat[:, None], 0.0, (sub - mu) / np.where(sd < 1e-12, 1.0, sd))
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    d[flat[:, None] ^ flat[None, :]] = m  # one constant, one not: stumpy's sqrt(m) distance (squared)
    excl = int(np.ceil(m / 4))
    idx = np.arange(len(sub))
    d[np.abs(idx[:, None] - idx[None, :]) < excl + 1] = np.inf
    return d.argmin(1)


def fluss_regime(values: Sequence[float] | np.ndarray, m: int, *, use_stumpy: bool | None = None) -> int:
    """FLUSS (Gharghabi et al. 2017): index where the one regime change of ``x`` starts.

    The arc curve counts nearest-neighbour arcs crossing each point; divided by the arc curve of a
    series with no regimes (2·i·(n−i)/n) it is the corrected arc curve, lowest at a regime change;
    the first and last ``m`` points are excluded. With ``use_stumpy`` (default: for series longer
    than 500 points, where it pays) the matrix profile and FLUSS come from the ``stumpy`` library;
    the short per-epoch series use this NumPy form (stumpy's JIT compile costs minutes on 2 cores).
    """
    x = np.asarray(values, dtype=float)
    if use_stumpy is None:
        use_stumpy = len(x) > 500 and _has_stumpy()
    if use_stumpy:
        import stumpy

        mp = stumpy.stump(x, m)
        _, regimes = stumpy.fluss(mp[:, 1].astype(np.int64), L=m, n_regimes=2, excl_factor=1)
        return int(regimes[0])
    nn = _matrix_profile_index(x, m)
    n = len(nn)
    mark = np.zeros(n + 1)
    for i, j in enumerate(nn):
        lo, hi = min(i, j), max(i, j)
        mark[lo] += 1
        mark[hi] -= 1
    arcs = np.cumsum(mark)[:n]
    pos = np.arange(n)
    iac = 2.0 * pos * (n - pos) / n
    cac = np.ones(n)
    ok = iac > 0
    cac[ok] = np.minimum(arcs[ok] / iac[ok], 1.0)
    cac[:m] = 1.0
    cac[-m:] = 1.0
    return int(np.argmin(cac))


def _has_stumpy() -> bool:
    try:
        import stumpy  # noqa: F401
    except ImportError:
        return False
    return True


def project(records: Sequence[EpochRecord], planned_epochs: int, *, window: int = RULE_WINDOW,
            stable_from: int | None = None, method: str = "rule", energy_source: str = "meter") -> Projection | None:
    """Seed 002 Eq. 1 and 2 from ``records`` (epochs so far); None until ``window`` stable epochs exist."""
    if planned_epochs <= 0:
        raise UserInputError(f"planned epochs must be a positive integer, got {planned_epochs}")
    if window <= 0:
        raise UserInputError(f"window must be a positive integer, got {window}")
    n = len(records)
    notes: list[str] = []
    if stable_from is None:
        has_energy = all(r.energy_j is not None for r in records)
        series = [r.power_w if has_energy and r.power_w is not None else r.duration_s for r in records]
        stable_from, detector = stabilising_epoch(series, method=method)
        if stable_from is None:
            return None
    else:
        detector = "given"
    if stable_from + window - 1 > n:
        return None
    win = records[stable_from - 1: stable_from - 1 + window]
    before = records[: stable_from - 1]
    elapsed = sum(r.duration_s for r in records)
    remaining = max(planned_epochs - n, 0)
    mean_t = sum(r.duration_s for r in win) / len(win)
    duration = elapsed + mean_t * remaining
    if planned_epochs < n:
        notes.append(f"{n} epochs ran, more than the {planned_epochs} planned: projecting the epochs that ran")
    s = max(planned_epochs, n) - len(before)  # stable epochs of the plan
    if any(r.energy_j is None for r in records):
        return Projection(n, planned_epochs, stable_from, window, detector, duration, None, None, None,
                          energy_source, tuple(notes + ["no energy: time only"]))
    e_w = [r.energy_j for r in win if r.energy_j is not None]  # none is None (checked above)
    p_w = sum(e_w) / sum(r.duration_s for r in win)
    e_u = sum(r.energy_j for r in before if r.energy_j is not None)
    eq1 = p_w * duration
    eq2 = sum(e_w) * s / len(win) + e_u
    band = (min(e_w) * s + e_u, max(e_w) * s + e_u)
    return Projection(n, planned_epochs, stable_from, window, detector, duration, eq1, eq2, band, energy_source,
                      tuple(notes))


class EnergyBudgetExceeded(FxEnergyError):
    """The projected energy of the run exceeds the tracker's ``energy_budget_j``."""


@dataclass
class TrainingTracker:
    """Per-epoch time and energy of a training loop, and seed 002's projection of the whole run.

    >>> tracker = TrainingTracker(planned_epochs=3, window=1, stable_from=1, meter=WallClockMeter(),
    ...                           assumed_power_w=100.0)
    >>> with tracker:
    ...     for _ in range(3):
    ...         _ = sum(range(1000))
    ...         p = tracker.epoch_end()
    >>> p.epochs_seen, p.energy_source.startswith("assumed")
    (3, True)
    """

    planned_epochs: int
    window: int = RULE_WINDOW
    stable_from: int | None = None  # None: found by `method` ("rule": seed 002's epoch 10; "fluss"; "auto")
    method: str = "rule"  # measured better than online FLUSS on warm-up traces (docs/validation.md)
    meter: Any = None  # None: auto_meter()
    assumed_power_w: float | None = None  # used only when the meter has no energy
    energy_budget_j: float | None = None
    stop_action: str = "flag"  # "flag": set should_stop; "raise": raise EnergyBudgetExceeded
    on_projection: Callable[[Projection], None] | None = None
    clock: Callable[[], float] = time.perf_counter
    records: list[EpochRecord] = field(default_factory=list, init=False)
    projection: Projection | None = field(default=None, init=False)
    should_stop: bool = field(default=False, init=False)
    _running: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.planned_epochs, bool) or not isinstance(self.planned_epochs, int) or self.planned_epochs <= 0:
            raise UserInputError(f"planned_epochs must be a positive integer, got {self.planned_epochs!r}")
        if not isinstance(self.window, int) or self.window <= 0:
            raise UserInputError(f"window must be a positive integer, got {self.window!r}")
        if self.stable_from is not None and (not isinstance(self.stable_from, int) or self.stable_from <= 0):
            raise UserInputError(f"stable_from must be a positive integer (1-based epoch), got {self.stable_from!r}")
        if self.energy_budget_j is not None and not (self.energy_budget_j > 0 and math.isfinite(self.energy_budget_j)):
            raise UserInputError(f"energy_budget_j must be a positive number, got {self.energy_budget_j!r}")
        if self.assumed_power_w is not None and not (self.assumed_power_w > 0 and math.isfinite(self.assumed_power_w)):
            raise UserInputError(f"assumed_power_w must be a positive number, got {self.assumed_power_w!r}")
        if self.stop_action not in ("flag", "raise"):
            raise UserInputError(f"stop_action must be 'flag' or 'raise', got {self.stop_action!r}")
        if self.meter is None:
            self.meter = auto_meter()

    # ------------------------------------------------------------ loop protocol
    def start(self) -> TrainingTracker:
        self.records.clear()
        self.projection, self.should_stop = None, False
        self._t0 = self.clock()
        self._e0 = self.meter.read_j()
        self._running = True
        return self

    def stop(self) -> None:
        self._running = False

    def __enter__(self) -> TrainingTracker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def energy_source(self) -> str:
        if self._e0 is not None:
            return f"measured ({self.meter.name})"
        if self.assumed_power_w is not None:
            return f"assumed {self.assumed_power_w:g} W x measured time ({self.meter.name} has no energy)"
        return f"none ({self.meter.name}): time only"

    def epoch_end(self) -> Projection | None:
        """Close the current epoch; return the projection once ``window`` stable epochs exist, else None."""
        if not self._running:
            raise UserInputError("tracker.epoch_end() called outside a training loop: use `with tracker:` "
                                 "(or tracker.start()) around the loop")
        t, e = self.clock(), self.meter.read_j()
        dt = t - self._t0
        if e is not None and self._e0 is not None:
            de: float | None = e - self._e0
        elif self.assumed_power_w is not None:
            de = self.assumed_power_w * dt
        else:
            de = None
        self._t0, self._e0 = t, e
        self.records.append(EpochRecord(len(self.records) + 1, dt, de))
        self.projection = project(self.records, self.planned_epochs, window=self.window,
                                  stable_from=self.stable_from, method=self.method, energy_source=self.energy_source)
        p = self.projection
        if p is not None:
            if self.on_projection is not None:
                self.on_projection(p)
            if self.energy_budget_j is not None and p.energy_j is not None and p.energy_j > self.energy_budget_j:
                self.should_stop = True
                if self.stop_action == "raise":
                    raise EnergyBudgetExceeded(
                        f"projected training energy {p.energy_j:.4g} J exceeds the budget {self.energy_budget_j:.4g} J "
                        f"after {p.epochs_seen} epochs")
        return p

    @property
    def measured_energy_j(self) -> float | None:
        if not self.records or any(r.energy_j is None for r in self.records):
            return None
        return float(sum(r.energy_j for r in self.records if r.energy_j is not None))


def lightning_callback(tracker: TrainingTracker) -> Any:
    """A PyTorch Lightning ``Callback`` that drives ``tracker`` and stops the trainer on budget."""
    try:
        from lightning.pytorch.callbacks import Callback
    except ImportError:
        try:
            from pytorch_lightning.callbacks import Callback
        except ImportError:
            raise UserInputError("the Lightning callback needs lightning (pip install lightning)") from None

    class FxEnergyLightningCallback(Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            tracker.start()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            tracker.epoch_end()
            if tracker.should_stop:
                trainer.should_stop = True

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            tracker.stop()

    return FxEnergyLightningCallback()


def transformers_callback(tracker: TrainingTracker) -> Any:
    """A Hugging Face ``transformers.TrainerCallback`` that drives ``tracker`` and stops on budget."""
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise UserInputError("the transformers callback needs transformers") from None

    class FxEnergyTrainerCallback(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            tracker.start()
            return control

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            tracker.epoch_end()
            if tracker.should_stop:
                control.should_training_stop = True
            return control

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            tracker.stop()
            return control

    return FxEnergyTrainerCallback()
