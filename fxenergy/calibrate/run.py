"""``run_calibration``: measure this machine, fit it, and return one :class:`Calibration`."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from fxenergy.calibrate import fitting as _fitting
from fxenergy.calibrate.benches import Bench, benchmarks, skipped_in_quick
from fxenergy.calibrate.files import Calibration
from fxenergy.calibrate.fitting import PEAK_MARGIN as _PEAK_MARGIN
from fxenergy.calibrate.fitting import UNITS as _UNITS
from fxenergy.calibrate.fitting import (
    _peaks,
    _profile_energy,
    drift_note,
    fit_cpu_perf,
    fit_families,
    measurement_class,
    normalise_drift,
)
from fxenergy.calibrate.meters import _meter, _meter_source, _power_windows
from fxenergy.calibrate.timing import CpuWatch, Progress, SpeedTrace, _device, _Timer, measure
from fxenergy.hardware import HardwareProfile, detect_local
from fxenergy.hardware.detect import CPU_W_PER_CORE_GUESS
from fxenergy.perf.cpu import local_thread_info
from fxenergy.predictors.hef_law import HEFEnergy, HEFParameters

__all__ = ["run_calibration"]


def _measure_launch_s(dev: torch.device, timer: _Timer) -> float:
    """Seconds per call of a one-element add: PyTorch's per-op dispatch (+ launch on CUDA) overhead."""
    a, b = torch.ones(1, device=dev), torch.ones(1, device=dev)
    with torch.inference_mode():
        return timer(lambda: torch.add(a, b))[0]


def _llc_bytes(profile: HardwareProfile) -> int:
    """Size of the largest cache of ``profile`` (bytes; 32 MiB when the profile lists none)."""
    return max((c.total_bytes for c in profile.caches), default=32 * 2**20)


def _measure_stream(dev: torch.device, profile: HardwareProfile, timer: _Timer) -> tuple[float, int]:
    """Bytes/s of a copy much larger than the last-level cache (DRAM bandwidth), and its bytes moved."""
    n = max(4 * _llc_bytes(profile), 64 * 2**20) // 4
    src, dst = torch.ones(n, device=dev), torch.empty(n, device=dev)
    with torch.inference_mode():
        t = timer(lambda: dst.copy_(src))[0]
    return 8 * n / t, 8 * n


def _measure_fault_s_per_byte(timer: _Timer) -> float:
    """Seconds per byte an op pays to first-touch a fresh output above the allocator's mmap threshold:
    a ReLU into a new 64 MiB tensor minus the same ReLU into an existing one (CPU only)."""
    n = 64 * 2**20 // 4
    x, y = torch.ones(n), torch.empty(n)
    with torch.inference_mode():
        fresh = timer(lambda: torch.relu(x))[0]
        reused = timer(lambda: torch.clamp_min(x, 0.0, out=y))[0]
    return max(fresh - reused, 0.0) / (4 * n)


def _calibrated_profile(
    profile: HardwareProfile, peaks: Mapping[str, Mapping[str, Any]], launch_s: float, stream_bps: float, today: str,
) -> tuple[HardwareProfile, list[str]]:
    sources, estimated, notes = dict(profile.sources), list(profile.estimated), []
    changes: dict[str, Any] = {}
    fp32 = peaks["flops"]
    if fp32["raised"]:
        flops = dict(profile.peak_flops)
        scale = fp32["value"] / flops["fp32"]
        for k in flops:  # keep the dtype ratios of the detected profile
            flops[k] *= scale
        changes["peak_flops"] = flops
        sources["peak_flops"] = (f"fxenergy calibrate {today}: measured {fp32['best_measured'] / 1e9:.1f} GFLOP/s "
                                 f"fp32 ({fp32['best_op']}) beat the profile's {fp32['profile'] / 1e9:.1f}; "
                                 f"peak = measured x {_PEAK_MARGIN}, other dtypes scaled alike")
        notes.append(f"fp32 peak raised from {fp32['profile'] / 1e9:.1f} to {fp32['value'] / 1e9:.1f} GFLOP/s "
                     f"(measured {fp32['best_measured'] / 1e9:.1f} GFLOP/s on {fp32['best_op']})")
    if profile.is_estimated("memory_bandwidth_bytes_per_s") or stream_bps > profile.memory_bandwidth_bytes_per_s:
        changes["memory_bandwidth_bytes_per_s"] = stream_bps
        sources["memory_bandwidth_bytes_per_s"] = (f"fxenergy calibrate {today}: copy of a tensor 4x the last-level "
                                                   "cache (bytes read + written / median time)")
        notes.append(f"DRAM bandwidth measured: {stream_bps / 1e9:.1f} GB/s "
                     f"(profile said {profile.memory_bandwidth_bytes_per_s / 1e9:.1f})")
        estimated = [e for e in estimated if e != "memory_bandwidth_bytes_per_s"]
    changes["kernel_launch_overhead_s"] = launch_s
    sources["kernel_launch_overhead_s"] = f"fxenergy calibrate {today}: median time of a one-element torch.add"
    estimated = [e for e in estimated if e != "kernel_launch_overhead_s"]
    if profile.tdp_w is None:
        guess = CPU_W_PER_CORE_GUESS * profile.compute_units if not profile.is_gpu else 250.0
        changes["tdp_w"] = guess
        sources["tdp_w"] = (f"guess by fxenergy calibrate: {CPU_W_PER_CORE_GUESS:g} W per core (no RAPL limit or "
                            "spec figure found)" if not profile.is_gpu else "guess by fxenergy calibrate: 250 W")
        estimated.append("tdp_w")
        notes.append(f"TDP unknown; {guess:.0f} W assumed for the profile power model")
    display = profile.display_name.replace(" (detected)", "") + f" (calibrated {today})"
    return dataclasses.replace(profile, display_name=display, sources=sources, estimated=tuple(dict.fromkeys(estimated)),
                               **changes), notes


def run_calibration(
    device: str = "cpu", *, quick: bool = False, progress: Progress | None = None,
    benches: Sequence[Bench] | None = None, profile: HardwareProfile | None = None,
) -> Calibration:
    """Measure this machine and fit its HEF parameters (see the module docstring).

    ``device`` is ``"cpu"`` or ``"cuda"`` (``"cuda:N"``); ``quick`` runs fewer shapes and shorter
    repeats (about 1 minute on a 2-core CPU, against about 3 for the full run). ``progress(stage, done,
    total)`` is called before each benchmark. ``benches`` and ``profile`` override the built-in
    benchmark list and :func:`~fxenergy.hardware.detect_local`'s profile (tests use tiny lists).

    Example (takes a minute or two)::

        cal = run_calibration(quick=True)
        save_calibration(cal, "my-cpu.json")   # then: fxenergy report resnet50 --hardware my-cpu.json
    """
    from fxenergy import __version__

    dev = _device(device)
    if profile is None:
        profile = detect_local("gpu" if dev.type == "cuda" else "cpu")
    benches = list(benches) if benches is not None else benchmarks(dev.type, quick=quick)
    target_s, repeats, window_s, wait_s = (0.004, 5, 0.5, 30.0) if quick else (0.015, 9, 2.0, 120.0)
    timer = _Timer(dev, target_s=target_s, repeats=repeats)
    now = _dt.datetime.now(_dt.timezone.utc)
    today = now.date().isoformat()
    wall0 = time.perf_counter()

    # CPU: the machine's speed through the run (a shared host slows a VM by up to 2x for minutes, unreported by steal)
    trace = SpeedTrace() if dev.type == "cpu" else None
    with CpuWatch() as watch:
        if trace is not None:
            trace.take()
        launch_s = _measure_launch_s(dev, timer)
        stream_bps, stream_bytes = _measure_stream(dev, profile, timer)
        ms = measure(benches, device, target_s=target_s, repeats=repeats, wait_budget_s=wait_s,
                     cold_bytes=2 * _llc_bytes(profile), progress=progress, trace=trace)
        if trace is not None:
            trace.take(sustained=True)  # the run's last state, sustained too (the benchmark's like-with-like reference)
            ms = trace.stamp(ms)
        # DRAM bandwidth drifts with what the neighbours of a shared host do: median of readings before and after
        stream_bps = statistics.median([stream_bps, _measure_stream(dev, profile, timer)[0],
                                        _measure_stream(dev, profile, timer)[0]])
    stream_prof = dataclasses.replace(profile, memory_bandwidth_bytes_per_s=stream_bps) \
        if profile.is_estimated("memory_bandwidth_bytes_per_s") else profile
    # the fit sees the times put on one machine state (the file keeps them as measured, with their canaries)
    drift: dict[str, Any] = {"applied": False, "why": "off (fitting.DRIFT_CORRECTION)"}
    fit_ms = list(ms)
    if trace is not None and _fitting.DRIFT_CORRECTION:
        fit_ms, drift = normalise_drift(ms, trace.points)
    # the in-place rows (kernel class ``inplace``: hot, or timed after their producer, whose time they include) stream
    # from a cache, not DRAM: they fit their own CPU curve only, not the bytes peak nor the per-family laws
    cold = [m for m in fit_ms if measurement_class(m) != "inplace"]
    peaks = _peaks(cold, stream_prof)
    cal_profile, notes = _calibrated_profile(profile, peaks, launch_s, stream_bps, today)
    if trace is not None:
        notes.append(drift_note(drift))
    units = _UNITS[dev.type]
    laws, stats = fit_families(cold, peaks["flops"]["value"], peaks["bytes"]["value"], units=units)
    if watch.share is not None and watch.share > 0.05:
        notes.append(f"other processes used {watch.share:.0%} of the CPUs while the benchmarks ran: timings may be "
                     "inflated; calibrate on a quiet machine")
    if peaks["bytes"]["raised"]:
        notes.append(f"HEF bytes peak raised to {peaks['bytes']['value'] / 1e9:.1f} GB/s: measured "
                     f"{peaks['bytes']['best_measured'] / 1e9:.1f} GB/s on {peaks['bytes']['best_op']} (beats the DRAM "
                     "copy: caches)")

    meter, why = _meter(dev)
    power = None
    if meter is not None:
        power = _power_windows(meter, benches, dev, window_s, progress)
        idle = next(r["mean_w"] for r in power if r["family"] == "idle")
        energy = HEFEnergy(0.0, {r["family"]: r["mean_w"] for r in power if r["family"] != "idle"}, idle)
        source = _meter_source(meter)
    else:
        energy = _profile_energy(fit_ms, cal_profile)
        source = "profile"
        notes.append(f"no energy meter ({why}); elasticities from the profile's idle..TDP power model")

    params = HEFParameters(
        name=f"calibrated-{profile.name}", source=f"fxenergy calibrate on {cal_profile.display_name}",
        device=cal_profile.name, peak_flops=peaks["flops"]["value"], peak_bytes_per_s=peaks["bytes"]["value"],
        families=laws, energy=energy,
        fitted_on={
            "device": str(dev), "dtype": "float32", "threads": torch.get_num_threads(), "quick": quick,
            "torch": torch.__version__, "measurements": len(ms), "fit": "fit_power_law(method='log', loss='soft_l1')",
            "in_sample": stats, "peaks": peaks, "launch_s": launch_s,
            "stream": {"bytes": stream_bytes, "bytes_per_s": stream_bps}, "cold_inputs_bytes": 2 * _llc_bytes(profile),
            "wall_s": round(time.perf_counter() - wall0, 1), "energy_source": source,
            "other_cpu_share": None if watch.share is None else round(watch.share, 3),
        } | ({"speed_trace": trace.summary(), "drift": drift} if trace is not None else {}),
        notes=tuple(notes),
    )
    cpu_perf = cpu_power = None
    threads = local_thread_info() if dev.type == "cpu" else None
    if dev.type == "cpu":
        fault = _measure_fault_s_per_byte(timer)
        notes.append(f"page faults of fresh outputs over 32 MiB: {fault * 2**20 * 1e3:.3f} ms per MiB")
        cpu_perf = fit_cpu_perf(fit_ms, peaks["flops"]["value"], peaks["bytes"]["value"],
                                threads=torch.get_num_threads(), dispatch_s=launch_s,
                                fitted_on={"quick": quick, "measurements": len(ms), "threads": threads,
                                           "torch": torch.__version__, "drift": drift},
                                fault_s_per_byte=fault, dram_bytes_per_s=stream_bps)
        cpu_power = {}
        if power is not None and meter is not None:
            busy = [r["mean_w"] for r in power if r["family"] != "idle"]
            cores = max(1, min(torch.get_num_threads(), cal_profile.compute_units))
            cpu_power = {"idle_w": round(idle, 3), "core_w": round(max(statistics.median(busy) - idle, 0.0) / cores, 4),
                         "busy_share": 1.0, "source": f"RAPL package windows of this calibration ({source})"}
    skipped = skipped_in_quick(quick)
    if skipped:
        notes.append("quick calibration skipped: " + "; ".join(skipped))
    return Calibration(cal_profile, params, tuple(ms), source, now.isoformat(timespec="seconds"), __version__,
                       tuple(power) if power is not None else None, tuple(notes), cpu_perf, cpu_power, threads,
                       skipped, speed_trace=tuple(trace.points) if trace is not None else ())


