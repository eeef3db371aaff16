"""Energy windows of a calibration, on :mod:`fxenergy.measure`'s meters (RAPL package counters on CPUs,
NVML on GPUs; wrap-around handled and failed windows retried there).

``RaplMeter``, ``NvmlMeter``, ``MeterUnavailable`` and ``rapl_delta_uj`` are re-exported for existing
callers of :mod:`fxenergy.calibrate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from fxenergy.calibrate.benches import Bench
from fxenergy.calibrate.timing import Progress
from fxenergy.measure.meters import MeterError, MeterUnavailable, NvmlMeter, RaplMeter, rapl_delta_uj

__all__ = ["MeterUnavailable", "rapl_delta_uj", "RaplMeter", "NvmlMeter"]


def _meter(dev: torch.device) -> tuple[Any, str | None]:
    """A meter for ``dev``, or None and why not."""
    try:
        if dev.type == "cuda":
            return NvmlMeter(dev.index or 0), None
        return RaplMeter(dram=False), None  # package domains, as the elasticities have always been measured
    except MeterUnavailable as e:
        return None, str(e)


def _meter_source(meter: Any) -> str:
    return "nvml" if meter.name.startswith("nvml") else "rapl"


def _window(meter: Any, run: Callable[[], Any], retries: int = 3) -> tuple[float, float]:
    """``(seconds, joules)`` of one metered window; a window whose meter failed (wrapped twice, stuck,
    unreadable) is taken again, at most ``retries`` times."""
    for attempt in range(retries + 1):
        meter.begin()
        t0 = time.perf_counter()
        run()
        seconds = time.perf_counter() - t0
        try:
            return seconds, sum(meter.end().values())
        except MeterError:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def _power_windows(
    meter: Any, benches: Sequence[Bench], dev: torch.device, window_s: float, progress: Progress | None,
) -> list[dict[str, Any]]:
    """Mean power (W) while each family's benchmarks run back to back for ``window_s``, and at idle."""
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    rows: list[dict[str, Any]] = []
    seconds, joules = _window(meter, lambda: time.sleep(window_s))
    rows.append({"family": "idle", "window_s": seconds, "energy_j": joules})
    fams = sorted({b.family for b in benches})
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for i, fam in enumerate(fams):
            if progress:
                progress(f"power {fam}", i, len(fams))
            calls = [(b, b.tensors(dev, gen)) for b in benches if b.family == fam]
            # largest half of the benchmarks: the power of small ones is mostly dispatch overhead
            calls = calls[len(calls) // 2:]
            sync()

            def run(calls: list = calls) -> None:
                t0, n = time.perf_counter(), 0
                while time.perf_counter() - t0 < window_s or n == 0:
                    for b, xs in calls:
                        b.fn(*xs, **b.kwargs)
                    n += 1
                    meter.poll()
                sync()

            seconds, joules = _window(meter, run)
            rows.append({"family": fam, "window_s": seconds, "energy_j": joules})
    for r in rows:
        r["mean_w"] = r["energy_j"] / r["window_s"]
    return rows
