"""Energy meters of a calibration (RAPL package counters on CPUs, NVML on GPUs).

NB: kept apart on purpose: ``fxenergy.measure`` meters will replace this module; nothing else in
:mod:`fxenergy.calibrate` reads a counter.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fxenergy.calibrate.benches import Bench
from fxenergy.calibrate.timing import Progress

__all__ = ["MeterUnavailable", "rapl_delta_uj", "RaplMeter", "NvmlMeter"]

# --------------------------------------------------------------------------------------------------
# energy meters


class MeterUnavailable(Exception):
    """No usable energy counter; the message says why."""


def rapl_delta_uj(start: int, end: int, max_range: int) -> int:
    """Energy (uJ) between two readings of one RAPL counter that wraps at ``max_range`` (uJ).

    NB: a counter can wrap at most once between readings; read it more often than every
    ``max_range`` uJ (minutes at package power).
    """
    return end - start if end >= start else end + max_range - start


class RaplMeter:
    """Package energy of all CPU sockets from ``/sys/class/powercap/intel-rapl:N/energy_uj`` (also on AMD).

    Only top-level (package) domains are read, so that core/uncore/DRAM sub-domains are not counted
    twice. Raises :class:`MeterUnavailable` when no domain exists or the counters are not readable
    (recent kernels make ``energy_uj`` root-only).
    """

    source = "rapl"

    def __init__(self, root: str | os.PathLike[str] = "/sys/class/powercap"):
        root = Path(root)
        domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not domains:
            raise MeterUnavailable(f"no RAPL package domain under {root}")
        self.domains, self.max_range = [], []
        for d in domains:
            try:
                (d / "energy_uj").read_text()
                self.max_range.append(int((d / "max_energy_range_uj").read_text()))
            except PermissionError:
                raise MeterUnavailable(f"{d / 'energy_uj'} is not readable (needs root, or "
                                       f"`chmod a+r {root}/intel-rapl:*/energy_uj`)") from None
            except (OSError, ValueError) as e:
                raise MeterUnavailable(f"cannot read RAPL domain {d}: {e}") from None
            self.domains.append(d)

    def read(self) -> list[int]:
        """One raw reading (uJ) per package domain."""
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    def joules(self, start: Sequence[int], end: Sequence[int]) -> float:
        """Energy (J) between two :meth:`read` results, wrap-around handled."""
        return sum(rapl_delta_uj(s, e, m) for s, e, m in zip(start, end, self.max_range)) / 1e6


class NvmlMeter:
    """Total energy of one GPU from NVML (``nvmlDeviceGetTotalEnergyConsumption``, mJ; Volta and newer)."""

    source = "nvml"

    def __init__(self, index: int = 0):
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError:
            raise MeterUnavailable("pynvml is not installed (pip install nvidia-ml-py)") from None
        try:
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
        except Exception as e:  # pynvml.NVMLError and its many subclasses
            raise MeterUnavailable(f"NVML energy counter unavailable: {e}") from None
        self._nvml = pynvml

    def read(self) -> list[int]:
        return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))]

    def joules(self, start: Sequence[int], end: Sequence[int]) -> float:
        return (end[0] - start[0]) / 1e3


def _meter(dev: torch.device) -> tuple[Any, str | None]:
    """A meter for ``dev``, or None and why not."""
    try:
        if dev.type == "cuda":
            return NvmlMeter(dev.index or 0), None
        return RaplMeter(), None
    except MeterUnavailable as e:
        return None, str(e)


def _power_windows(
    meter: Any, benches: Sequence[Bench], dev: torch.device, window_s: float, progress: Progress | None,
) -> list[dict[str, Any]]:
    """Mean power (W) while each family's benchmarks run back to back for ``window_s``, and at idle."""
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    rows = []
    t0, e0 = time.perf_counter(), meter.read()
    time.sleep(window_s)
    rows.append({"family": "idle", "window_s": time.perf_counter() - t0,
                 "energy_j": meter.joules(e0, meter.read())})
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
            t0, e0, n = time.perf_counter(), meter.read(), 0
            while time.perf_counter() - t0 < window_s or n == 0:
                for b, xs in calls:
                    b.fn(*xs, **b.kwargs)
                n += 1
            sync()
            rows.append({"family": fam, "window_s": time.perf_counter() - t0, "energy_j": meter.joules(e0, meter.read())})
    for r in rows:
        r["mean_w"] = r["energy_j"] / r["window_s"]
    return rows


