"""Measurement windows: repeat a callable for at least ``min_window_s`` seconds, several times.

Seed 000 (Getzner et al., App. A.1) ran as many forward passes as fit in a 30 s window, divided the
window's energy by the number of passes, repeated that up to three times per configuration and
removed erroneous observations. :func:`measure_calls` does the same with every duration an option
(defaults small enough for tests; ``fxenergy collect --window 30 --repeats 3`` is seed 000's set-up):

1. ``warmup`` untimed calls (caches, allocator, lazy initialisation, cuDNN autotuning);
2. up to ``repeats`` windows, each calling ``fn`` back to back until ``min_window_s`` has passed
   (at least ``min_calls`` calls), between ``meter.begin()`` and ``meter.end()``; ``sync`` (e.g.
   ``torch.cuda.synchronize``) runs before the clock and the meter are read at both ends;
3. a window whose meter raised :class:`~fxenergy.measure.meters.MeterError` (a counter failed,
   stuck, or gave an implausible number) is discarded and taken again, at most ``retries`` times in
   all; if none succeeds, :class:`MeasurementFailed` is raised (never a zero or a negative);
4. outliers: with three or more windows, a window whose per-call value (energy where measured, else
   time) is more than ``outlier_ratio`` times the median or less than its inverse is dropped.

The result gives the mean over kept windows of time, energy and power per call, and the spread
``(max - min) / median`` of the per-call values across kept windows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fxenergy.measure.meters import Meter, MeterError, WallClockMeter

__all__ = ["Window", "Measurement", "MeasurementFailed", "measure_calls"]


class MeasurementFailed(Exception):
    """Every attempted window failed; the message gives the meter's last error."""


@dataclass(frozen=True, slots=True)
class Window:
    """One window: ``calls`` calls in ``seconds``; ``joules`` per meter domain (empty: time only)."""

    calls: int
    seconds: float
    joules: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.seconds / self.calls

    @property
    def energy_j(self) -> float | None:
        return sum(self.joules.values()) / self.calls if self.joules else None


@dataclass(frozen=True, slots=True)
class Measurement:
    """Per-call figures over the kept windows of one measurement."""

    duration_s: float
    duration_spread: float
    energy_j: float | None
    energy_spread: float | None
    power_w: float | None
    calls: int  # over kept windows
    windows: tuple[Window, ...]
    discarded: int  # windows whose meter failed
    outliers: int  # windows dropped as outliers
    meter: str
    domains: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def energy_by_domain_j(self) -> dict[str, float]:
        """Mean joules per call by meter domain (package-0, dram-0, gpu-0, ...)."""
        calls = sum(w.calls for w in self.windows)
        return {d: sum(w.joules[d] for w in self.windows) / calls for d in self.domains} if self.energy_j else {}


def _spread(values: list[float]) -> float:
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med > 0 else 0.0


def measure_calls(
    fn: Callable[[], Any], *, meter: Meter | None = None, min_window_s: float = 0.2, repeats: int = 3,
    warmup: int = 1, retries: int = 3, min_calls: int = 1, outlier_ratio: float = 1.5,
    sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Measure ``fn`` (see the module docstring). ``meter`` None: time only."""
    if repeats < 1 or min_calls < 1 or min_window_s < 0 or retries < 0 or outlier_ratio <= 1:
        raise ValueError("repeats, min_calls >= 1; min_window_s, retries >= 0; outlier_ratio > 1")
    meter = meter or WallClockMeter()
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    kept: list[Window] = []
    errors: list[str] = []
    while len(kept) < repeats:
        if len(errors) > retries:
            raise MeasurementFailed(f"{len(errors)} windows failed, the last: {errors[-1]}")
        try:
            meter.begin()
            t0, n = clock(), 0
            while True:
                fn()
                n += 1
                if n >= min_calls and clock() - t0 >= min_window_s:
                    break
                meter.poll()
            sync()
            seconds = clock() - t0
            joules = meter.end()
        except MeterError as e:
            errors.append(str(e))
            continue
        kept.append(Window(n, seconds, joules))
    outliers = 0
    if len(kept) >= 3:
        key = (lambda w: w.energy_j) if meter.measures_energy else (lambda w: w.duration_s)
        med = statistics.median(key(w) for w in kept)
        good = [w for w in kept if med / outlier_ratio <= key(w) <= med * outlier_ratio]
        outliers, kept = len(kept) - len(good), good
    calls = sum(w.calls for w in kept)
    seconds = sum(w.seconds for w in kept)
    durations = [w.duration_s for w in kept]
    energy = spread_e = power = None
    if meter.measures_energy:
        total_j = float(sum(sum(w.joules.values()) for w in kept))
        energy, power = total_j / calls, total_j / seconds
        spread_e = _spread([w.energy_j for w in kept])  # type: ignore[misc]
    notes = tuple(f"discarded window: {e}" for e in errors)
    return Measurement(seconds / calls, _spread(durations), energy, spread_e, power, calls, tuple(kept), len(errors),
                       outliers, meter.name, tuple(meter.domains), notes)
