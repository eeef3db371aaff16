"""Fitting a calibration's measurements: peaks, HEF power laws per family, CPU kernel-class curves."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import HardwareProfile
from fxenergy.predictors.hef_law import FAMILIES, FamilyLaw, HEFEnergy, fit_power_law

__all__ = ["fit_families", "fit_cpu_perf", "fit_grouped", "normalise_drift", "PEAK_MARGIN", "UNITS"]

PEAK_MARGIN = 1.05  # a peak raised by a measurement is the best measured throughput x this
UNITS = {"cpu": {"flops": "GFLOP", "bytes": "MB"}, "cuda": {"flops": "TFLOP", "bytes": "GB"}}

# --------------------------------------------------------------------------------------------------
# fitting


DRIFT_CORRECTION = True
"""Put a CPU calibration's measurements on one machine state before fitting (:func:`normalise_drift`); False: fit the
times as measured (the fit before session cpu15; ``benchmarks/cpu_refit.py --no-drift-correction`` for A/B)."""
DRIFT_SMOOTH_S = 10.0
"""Half-width (s) of the window of speed canaries whose median gives a measurement's machine state. This VM's canary
decorrelates within ~1.5 s (a single 20 ms reading is noisy: 57-195 GFLOP/s over 150 s, session cpu15's probe), while
the slowdowns that bias a calibration last minutes; the window's median follows the latter, not the former."""
DRIFT_CLAMP = (0.5, 2.0)
"""Bounds of a measurement's drift factor (its canary / the reference): this VM's speed moved by up to 2x."""
DRIFT_COPY_MIN_BYTES = 32 * 2**20
"""A memory-bound row (bytes basis) moving more than this per call (beyond a last-level cache) is put on the reference
state by the copy canary (GB/s); every other row by the matmul canary (GFLOP/s). Session cpu15's probe
(``benchmarks/cpu_drift_probe.py``): the 16 MiB-per-tensor add followed the copy canary (slope -0.93 on log-log) and not
the matmul one (-0.24); the convolutions, batched linears, attention bmm, gathers and cache-sized element-wise ops
followed the matmul canary (slopes -0.75 to -0.95) and not the copy one."""


DRIFT_WARN_RATIO = 1.5
"""A calibration whose drift factors span more than this (largest / smallest), or that has a factor at a bound of
:data:`DRIFT_CLAMP`, says in its notes that the machine was too unsteady to trust: five steady quick calibrations of
session cpu15 spanned 1.14-1.44 (the threshold was set after seeing them); one whose second half ran its two threads
on one core (``benchmarks/cpu_drift_slowhalf.sh``) spanned 0.97-2.00 (clamped), its canary falling from 129 to 17
GFLOP/s, and the correction could not rescue it (its reference, the median canary, lay in the slow phase)."""


def _drift_canary(m: Measurement, copy_min_bytes: int) -> str:
    """Which canary (``"gflops"`` or ``"gbs"``) puts ``m`` on the reference state (:data:`DRIFT_COPY_MIN_BYTES`)."""
    return "gbs" if FAMILIES[m.family].basis == "bytes" and m.bytes > copy_min_bytes else "gflops"


def normalise_drift(
    ms: Sequence[Measurement], trace: Sequence[Mapping[str, float]], *, smooth_s: float = DRIFT_SMOOTH_S,
    clamp: tuple[float, float] = DRIFT_CLAMP, copy_min_bytes: int = DRIFT_COPY_MIN_BYTES,
) -> tuple[list[Measurement], dict[str, Any]]:
    """``ms`` put on one machine state, and what was done: each time x (its canary / the reference canary), clamped to
    ``clamp``. A measurement's canary is the median of the trace's canaries within ``smooth_s`` of its time (the
    nearest one where none is); the reference is the median of all the trace's canaries (the machine's typical state
    over the run, robust to a slow phase shorter than half of it). Which canary applies: :func:`_drift_canary`. A time
    measured while the machine ran at half its typical speed is halved. Without a trace (files written before it), or
    where a measurement has no time (``t_s``), nothing is changed and the info says so."""
    if not trace:
        return list(ms), {"applied": False, "why": "no speed trace (calibration file written before session cpu15)"}
    ts = np.array([p["t_s"] for p in trace], dtype=float)
    series = {k: np.array([p[k] for p in trace], dtype=float) for k in ("gflops", "gbs")}
    ref = {k: float(np.median(v)) for k, v in series.items()}
    out, factors, used = [], [], {"gflops": 0, "gbs": 0}
    for m in ms:
        if m.t_s is None:
            out.append(m)
            continue
        key = _drift_canary(m, copy_min_bytes)
        near = np.abs(ts - m.t_s) <= smooth_s
        c = float(np.median(series[key][near])) if near.any() else float(series[key][np.argmin(np.abs(ts - m.t_s))])
        f = float(np.clip(c / ref[key], *clamp))
        factors.append(f)
        used[key] += 1
        out.append(dataclasses.replace(m, median_s=m.median_s * f))
    info = {"applied": bool(factors), "reference": "median of the trace", "reference_gflops": round(ref["gflops"], 1),
            "reference_gbs": round(ref["gbs"], 2), "smooth_s": smooth_s, "clamp": list(clamp),
            "copy_min_bytes": copy_min_bytes, "rows_by_canary": used, "rows_untimed": len(ms) - len(factors)}
    if factors:
        info |= {"factor_min": round(min(factors), 3), "factor_median": round(statistics.median(factors), 3),
                 "factor_max": round(max(factors), 3),
                 "clamped": sum(1 for f in factors if f in (clamp[0], clamp[1]))}
    return out, info


def drift_note(info: Mapping[str, Any]) -> str:
    """One line of a calibration's notes saying how its measurements were put on one machine state."""
    if not info.get("applied"):
        return f"speed drift not corrected: {info.get('why', 'no timed measurement')}"
    note = (f"speed drift corrected: each time x (speed canary around it / the run's median canary, "
            f"{info['reference_gflops']:.0f} GFLOP/s matmul, {info['reference_gbs']:.1f} GB/s copy for rows over "
            f"{info['copy_min_bytes'] // 2**20} MiB), factors {info['factor_min']:.2f}-{info['factor_max']:.2f} "
            f"(median {info['factor_median']:.2f}; clamped to {info['clamp'][0]:g}-{info['clamp'][1]:g}, "
            f"{info['clamped']} rows at a bound)")
    if info["clamped"] or info["factor_max"] > DRIFT_WARN_RATIO * info["factor_min"]:
        note += ("; WARNING: the machine's speed moved too much during the run for the correction to be trusted "
                 "(another process or a throttled host?): calibrate again on a quiet machine")
    return note


def _peaks(ms: Sequence[Measurement], profile: HardwareProfile) -> dict[str, dict[str, Any]]:
    """The peak each basis is relative to: the profile's, or the best measured throughput x 1.05."""
    out = {}
    for basis, spec in (("flops", profile.peak_flops_for(torch.float32)),
                        ("bytes", profile.memory_bandwidth_bytes_per_s)):
        rows = [m for m in ms if FAMILIES[m.family].basis == basis and m.median_s > 0]
        best = max(rows, key=lambda m: m.work(basis) / m.median_s, default=None)
        best_rate = best.work(basis) / best.median_s if best else 0.0
        raised = best_rate > spec
        out[basis] = {
            "value": best_rate * PEAK_MARGIN if raised else spec, "profile": spec, "best_measured": best_rate,
            "best_op": f"{best.op} {best.shape}" if best else None, "raised": raised,
        }
    return out


def fit_families(
    ms: Sequence[Measurement], peak_flops: float, peak_bytes_per_s: float, *, units: Mapping[str, str] | None = None,
) -> tuple[dict[str, FamilyLaw], dict[str, dict[str, Any]]]:
    """A power law per family of ``ms`` (at least 4 measurements each), and per-family fit statistics
    (in-sample median / worst absolute percentage error of duration)."""
    units = units or UNITS["cpu"]
    laws, stats = {}, {}
    for fam in sorted({m.family for m in ms}):
        basis = FAMILIES[fam].basis
        rows = [m for m in ms if m.family == fam]
        work = np.array([m.work(basis) for m in rows])
        t = np.array([m.median_s for m in rows])
        peak = peak_flops if basis == "flops" else peak_bytes_per_s
        law = fit_power_law(work, t, peak, unit=units[basis], method="log")
        ape = np.abs(law.duration_s(work, peak) / t - 1)
        laws[fam] = FamilyLaw(law, basis)
        stats[fam] = {"rows": len(rows), "basis": basis, "mdape": round(float(np.median(ape)), 4),
                      "max_ape": round(float(np.max(ape)), 4)}
    return laws, stats



def _profile_energy(ms: Sequence[Measurement], profile: HardwareProfile) -> HEFEnergy:
    """Elasticities from the idle..TDP power model at each family's median measured utilisation."""
    from fxenergy.predictors.power import PowerModel
    from fxenergy.records import NodeCost

    power = PowerModel(profile)
    out = {}
    for fam in sorted({m.family for m in ms}):
        watts = []
        for m in ms:
            if m.family == fam:
                cost = NodeCost(m.flops // 2, m.flops, m.elementwise_flops, m.bytes, 0, 0, m.op)
                watts.append(power.energy_j(cost, torch.float32, m.median_s) / m.median_s)
        out[fam] = float(np.median(watts))
    return HEFEnergy(0.0, out, power.idle_w)




def measurement_class(m: Measurement) -> str:
    """The kernel class (:data:`fxenergy.perf.cpu.KERNEL_CLASSES`) of a measurement."""
    from fxenergy.perf.cpu import (
        ACTIVATION_OPS,
        INPLACE_AFTER_PRODUCER,
        INPLACE_BENCH_OPS,
        LAYOUT_BENCH_OPS,
        conv_class,
    )

    if m.family == "convolution":
        return conv_class(m.shape[1], int(m.params.get("groups", 1)))
    if m.family == "elementwise" and m.op in ACTIVATION_OPS:
        return "activation"
    if m.family == "elementwise" and m.op == "tanh":
        return "tanh"
    if m.family in ("attention_score", "attention_output"):
        return "bmm"
    if m.op in LAYOUT_BENCH_OPS:
        return "layout"
    if m.family == "elementwise" and (m.op in INPLACE_BENCH_OPS or m.op in INPLACE_AFTER_PRODUCER):
        return "inplace"
    return m.family


def inplace_rows(ms: Sequence[Measurement]) -> list[Measurement]:
    """``ms`` with the ``inplace`` rows the class is fitted on: where the calibration timed in-place ops right after
    their producer (:data:`fxenergy.perf.cpu.INPLACE_AFTER_PRODUCER`), those rows less the producer's row of the same
    shapes (time; their work is already the in-place op's own), and no hot rows; else the hot rows, as before (older
    files). A pair with no producer row, or whose difference is under a tenth of the pair's time (noise), is dropped."""
    from fxenergy.perf.cpu import INPLACE_AFTER_PRODUCER

    producers = {(m.op, m.shape): m for m in ms if m.op in set(INPLACE_AFTER_PRODUCER.values())}
    paired = []
    for m in ms:
        prod = producers.get((INPLACE_AFTER_PRODUCER.get(m.op, ""), m.shape))
        if m.op in INPLACE_AFTER_PRODUCER and prod is not None and m.median_s - prod.median_s > 0.1 * m.median_s:
            paired.append(dataclasses.replace(m, median_s=m.median_s - prod.median_s))
    if not paired:
        return [m for m in ms if m.op not in INPLACE_AFTER_PRODUCER]
    return [m for m in ms if measurement_class(m) != "inplace"] + paired


def fault_s(m: Measurement, fault_s_per_byte: float, threads: int = 0) -> float:
    """Seconds of ``m`` spent page-faulting fresh outputs above the allocator's mmap threshold, and a
    convolution's blocked copies (:func:`fxenergy.perf.cpu.conv_fault_bytes`, the rule the duration model
    charges); ``threads`` those of the calibration (0 = unknown)."""
    from fxenergy.perf import cpu

    out = m.out_bytes * fault_s_per_byte if m.out_bytes > cpu.MMAP_THRESHOLD_BYTES else 0.0
    if m.family == "convolution":
        copies, weights = cpu.conv_fault_bytes(
            m.shape[0], m.shape[1], input_bytes=4 * int(np.prod(m.shape[0])), output_bytes=m.out_bytes,
            weight_bytes=4 * int(np.prod(m.shape[1])), stride=_pair(m.params.get("stride", 1)),
            dilation=_pair(m.params.get("dilation", 1)), groups=int(m.params.get("groups", 1)), threads=threads)
        out += (copies + (weights if cpu.WEIGHT_REORDER_FAULTS else 0)) * fault_s_per_byte
        depthwise = cpu.conv_class(m.shape[1], int(m.params.get("groups", 1))) == "conv_depthwise"
        if HEAP_CHURN_FAULTS and depthwise:  # measured on depthwise convolutions only
            out += conv_heap_churn_bytes(4 * int(np.prod(m.shape[0])), m.out_bytes) * fault_s_per_byte
    return out


HEAP_CHURN_FAULTS = True
"""Take a convolution row's heap churn faults off it before fitting (:func:`conv_heap_churn_bytes`); False: as before."""


def conv_heap_churn_bytes(input_bytes: int, output_bytes: int) -> int:
    """Bytes of a calibration convolution's heap buffers (under the mmap threshold) that fault on every call because
    the call allocates and frees more than glibc's trim threshold at the heap's top: oneDNN's copy of the input, the
    output and oneDNN's copy of the output, where the three total over :data:`fxenergy.perf.cpu.HEAP_TRIM_BYTES`.
    A convolution timed alone in a loop has nothing else on the heap, so the freed top is returned and faulted in
    again. Measured (session cpu10, ``ru_minflt`` around 10 warm calls, 2 threads): a depthwise 3x3 on 16x32x112x112
    (3 x 24.5 MiB) faulted 73.4 MiB per call with glibc's thresholds fresh, raised by a freed 31 MiB tensor, or
    pinned at 32 / 64 MiB with ``mallopt`` (41-45 ms per call, against 0.95-1.3 ms at batch 4); 16x96x64x64
    (3 x 24 MiB) 71.9 MiB raised or pinned. Calibration side only: in a model the heap holds other tensors and the
    long-lived process's share (:data:`fxenergy.perf.cpu.HEAP_FAULT_SHARE_LONG_LIVED`) prices what faults there."""
    from fxenergy.perf import cpu

    heap = [b for b in (input_bytes, output_bytes, output_bytes) if b <= cpu.MMAP_THRESHOLD_BYTES]
    return sum(heap) if sum((input_bytes, output_bytes, output_bytes)) > cpu.HEAP_TRIM_BYTES else 0


def _pair(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def param_bytes(m: Measurement) -> int:
    """Bytes of the weights (and bias) a linear or convolution measurement reads: its 2nd and 3rd inputs
    (float32); 0 for other ops, whose inputs are all activations."""
    if m.op != "linear" and m.family != "convolution":
        return 0
    return 4 * sum(int(np.prod(s)) for s in m.shape[1:3])


GEMV_MIN_WEIGHT_BYTES = 2**20
"""Batch-1 linears with at least this many weight bytes set the median weight-streaming rate (smaller
ones are bound by their fixed cost, not by bandwidth)."""
MEMORY_BOUND_SHARE = 0.7
"""A compute-class measurement whose weights at the weight-streaming rate take over this share of its
time is memory-bound: it is left out of its class's FLOP curve (the weight term prices it)."""


def _gemv_rows(ms: Sequence[Measurement]) -> list[Measurement]:
    return [m for m in ms if m.op == "linear" and m.shape[0][0] == 1 and m.median_s > 0]


def weight_stream_bytes_per_s(ms: Sequence[Measurement]) -> float:
    """Rate (bytes/s) at which the calibration's batch-1 linears (GEMV) with at least
    :data:`GEMV_MIN_WEIGHT_BYTES` of weights streamed them: the median over those rows, 0 if none."""
    rates = [param_bytes(m) / m.median_s for m in _gemv_rows(ms) if param_bytes(m) >= GEMV_MIN_WEIGHT_BYTES]
    return float(np.median(rates)) if rates else 0.0


def fit_weight_law(ms: Sequence[Measurement], peak_bytes_per_s: float) -> Any:
    """Power law of the weight-streaming time over weight bytes (relative to ``peak_bytes_per_s``),
    fitted on the calibration's batch-1 linears (GEMV: one multiply-add per weight, memory-bound):
    small weights stream slower than large ones (fixed cost, prefetch ramp). None with under 4 rows."""
    rows = _gemv_rows(ms)
    if len(rows) < 4:
        return None
    work = np.array([param_bytes(m) for m in rows], dtype=float)
    return fit_power_law(work, np.array([m.median_s for m in rows]), peak_bytes_per_s, unit="MB", method="log")


PACKING_GRID_S_PER_MB = tuple(i * 0.01e-3 for i in range(41))
"""Candidate per-weight-byte costs of a batched linear layer (0 to 0.4 ms per MB, i.e. down to 2.5 GB/s)."""


def fit_law_plus_per_byte(work: np.ndarray, extra_bytes: np.ndarray, t: np.ndarray, peak: float, loss: str, *,
                          basis: str = "flops", grid_s_per_mb: Sequence[float] = PACKING_GRID_S_PER_MB) -> tuple[Any, float]:
    """``(law, s_per_byte)``: a power law over ``basis`` plus a cost per byte of something else,
    ``t = law(work) + B x s``. The per-byte cost is chosen on ``grid_s_per_mb`` by the lowest sum of squared log
    errors, the law refitted for each. Its uses:

    * batched linear layers (more than one row: GEMM), ``B`` their weight bytes on :data:`PACKING_GRID_S_PER_MB`: the
      BLAS packs the weight matrix into its blocked layout on every call, a cost that scales with the weights, not the
      FLOPs;
    * stems and reductions, ``B`` their output bytes (:data:`OUTPUT_TERM_CLASSES`);
    * dense convolutions, ``B`` their weight bytes (:data:`WEIGHT_TERM_CLASSES`);
    * 1x1 convolutions, ``B`` their activation bytes above a free amount (:func:`fit_activation_term`)."""
    best: tuple[float, Any, float] | None = None
    for s_mb in grid_s_per_mb:
        s_b = s_mb / 1e6
        rest = np.maximum(t - extra_bytes * s_b, 0.1 * t)
        try:
            law = fit_power_law(work, rest, peak, unit=UNITS["cpu"][basis], method="log", loss=loss)
        except Exception:  # noqa: BLE001 - a candidate the optimiser cannot fit is not a candidate
            continue
        err = float(np.sum(np.log((law.duration_s(work, peak) + extra_bytes * s_b) / t) ** 2))
        if best is None or err < best[0]:
            best = (err, law, s_b)
    assert best is not None  # s = 0 is fit_power_law on the data itself
    return best[1], best[2]


OUTPUT_TERM_CLASSES: dict[str, tuple[float, ...]] = {
    "conv_stem": tuple(i * 0.005e-3 for i in range(41)),  # 0 to 0.2 ms per MB of output (down to 5 GB/s)
    "reduction": tuple(i * 0.05e-3 for i in range(61)),  # 0 to 3 ms per MB of output (4 B per row: 12 ns per row)
}
"""Kernel classes fitted as their law plus a cost per output byte, ``t = law(work) + bytes_written x s``, with the
candidate costs (s per MB) the fit chooses from (:func:`fit_law_plus_per_byte`'s grid search). Measured on this project's 2-core
VM (session cpu12, ``benchmarks/cpu_stem_reduce_micro.py`` and the quick calibration of 1 Dec 06:53 UTC):

* ``reduction``: a ``mean`` over H, W (``adaptive_avg_pool2d(1)``) on short rows costs per output, not per byte:
  16x1280x2x2 and 16x1280x4x4 both took 0.081 ms (20480 rows, 4 ns each), 4x the bytes; one bytes law, dominated by the
  long rows (``sum`` over 768, ``mean`` over 112x112), priced the short rows networks end with at 0.31-0.68 of their time.
* ``conv_stem``: a 3-channel convolution does 27 (3x3) to 147 (7x7) MACs per output element, so writing its output
  (oneDNN's blocked output and its reorder to NCHW) costs apart from its FLOPs: one FLOP law priced the 7x7 stem 1.4-1.6x
  slow and the 3x3 stems of mobile networks 0.64-0.78x (``benchmarks/cpu_module_diag.py``).

``fxenergy.perf.cpu.CpuPerfParams.out_s_per_byte`` holds the fitted costs; older files have none and price as before."""


WEIGHT_TERM_CLASSES: dict[str, tuple[float, ...]] = {"conv_dense": PACKING_GRID_S_PER_MB}
"""Kernel classes fitted as their FLOP law plus a cost per weight byte, ``t = law(FLOPs) + weight bytes x s``
(:func:`fit_law_plus_per_byte`; candidates in s per MB), as batched linears are (``packing_s_per_byte``). Eager
PyTorch hands oneDNN a convolution's weights in NCHW on every call, and oneDNN copies them into its blocked layout
before computing: a cost of the weight bytes, not of the FLOPs. Without the term, the dense rows whose weights are
large for their FLOPs (512 and 1024 channels at 2x2..7x7 px: 12-54 GFLOP/s) are what the FLOP law sees at its small
end, and it priced small convolutions with small weights as slow as them (session cpu13, quick calibration of 1 Dec
09:59 UTC: 64 -> 64 3x3 at 28 px, 0.058 GFLOP and 147 KB of weights, measured at 128 GFLOP/s; the law without the
term gave ~50; ResNet-34 at batch 2 / 96 px, whose 3x3 convolutions have 0.01-0.17 GFLOP each, came out 1.6x slow
per module in ``benchmarks/cpu_module_diag.py``)."""
ACTIVATION_TERM_CLASSES: dict[str, tuple[float, ...]] = {"conv_pointwise": PACKING_GRID_S_PER_MB}
"""Kernel classes fitted as their FLOP law plus a cost per activation byte (input and output, not the weights),
``t = law(FLOPs) + activation bytes x s`` (:func:`fit_law_plus_per_byte`; candidates in s per MB). A 1x1 convolution
does only ``Cin`` MACs per output element, and eager PyTorch hands oneDNN NCHW activations that it copies into its
blocked layout and back on every call: a cost of the activation bytes that a FLOP law cannot see. It shows where the
channels are few and the batch large, the expand / project layers of mobile networks at batch 16-64, whose tensors
no longer fit the last-level cache (session cpu14, quick calibration of 1 Dec 11:31 UTC: one FLOP law priced
16x96x56x56 -> 24 at 0.44 of its measured 4.4 ms, 64x96x56x56 -> 24 at 0.55, 16x64x56x56 -> 256 at 0.74, while the
many-channel rows of the same FLOPs came out at 0.99-1.19; per module, ``benchmarks/cpu_module_diag.py``, the 1x1
layers of MNASNet 0.5 at batch 64 / 128 px took 2.1x their prediction and those of MobileNet v3 small 1.6x)."""
POINTWISE_MIN_PIXELS = 0
"""A ``conv_pointwise`` row whose input map has fewer pixels than this (2: a 1x1 convolution on a 1x1 map, the
calibration's squeeze-excitation rows) is left out of the class's law (:func:`pointwise_law_rows`); 0 (the default)
keeps every row. Such a call is a matrix-vector product of per-call cost 33-470 us for 0.1-14.5 MFLOP on this
project's VM (2-31 GFLOP/s, quick calibration of 1 Dec 17:30 UTC), and in a FLOP law over every 1x1 row they set the law's small
end: it prices the 1x1 layers of batch-1 networks at 5-30 MFLOP (7-14 px maps) at 1.5-2.3x their time replayed alone
and 1.3-1.9x their time inside the model (RegNet-X-400MF's 400 -> 400 at 7 px: 356 us predicted, 125-165 us alone,
170-230 us in the model; ``benchmarks/cpu_isolated_diag.py``, session cpu20). **Off**: leaving the rows out (2) mends
those layers but fails on whole development models against its paired control in seven of twelve (rows, timing)
pairings, both with a fresh calibration (session cpu20, docs/validation.md): the over-price offsets errors of the other
sign that stay (the in-model slowdown of memory-bound ops, session cpu18, and others not found).
``benchmarks/cpu_refit.py --drop-1px-pointwise`` for the A/B."""


def pointwise_law_rows(rows: Sequence[Measurement]) -> list[Measurement]:
    """The ``conv_pointwise`` rows its law is fitted on: those whose input map has at least
    :data:`POINTWISE_MIN_PIXELS` pixels (all of ``rows`` where that leaves under 4)."""
    kept = [m for m in rows if len(m.shape[0]) < 3 or int(np.prod(m.shape[0][2:])) >= POINTWISE_MIN_PIXELS]
    return kept if len(kept) >= 4 else list(rows)


ACTIVATION_TERM = True
"""Fit :data:`ACTIVATION_TERM_CLASSES` with their activation-byte term (False: one FLOP law each, as before; ablations)."""
ACTIVATION_FREE_GRID_BYTES = (0.0, 2.0**21, 2.0**22, 2.0**23, 2.0**24, 2.0**25)
"""Candidate activation bytes a 1x1 convolution moves free of the per-byte term (0 to 32 MiB: this project's VM has 2 x 1
MiB of L2 and a 32 MiB L3): only the bytes above pay it. The fit picks the candidate (:func:`fit_activation_term`); a
model's node then pays for the activation bytes its working set puts beyond it."""


def fit_activation_term(work: np.ndarray, act_bytes: np.ndarray, t: np.ndarray, peak: float, loss: str, *,
                        basis: str = "flops", grid_s_per_mb: Sequence[float] = PACKING_GRID_S_PER_MB,
                        free_grid_bytes: Sequence[float] = ACTIVATION_FREE_GRID_BYTES) -> tuple[Any, float, float]:
    """``(law, s_per_byte, free_bytes)``: ``t = law(work) + max(act_bytes - free_bytes, 0) x s``, the free bytes chosen on
    ``free_grid_bytes`` and the cost on ``grid_s_per_mb`` (:func:`fit_law_plus_per_byte` for each free-bytes candidate)
    by the lowest sum of squared log errors."""
    best: tuple[float, Any, float, float] | None = None
    for free in free_grid_bytes:
        extra = np.maximum(act_bytes - free, 0.0)
        law, s_b = fit_law_plus_per_byte(work, extra, t, peak, loss, basis=basis, grid_s_per_mb=grid_s_per_mb)
        err = float(np.sum(np.log((law.duration_s(work, peak) + extra * s_b) / t) ** 2))
        if best is None or err < best[0]:
            best = (err, law, s_b, float(free))
    assert best is not None
    return best[1], best[2], best[3]


PER_BYTE_ANCHOR: dict[str, float] = {"conv_dense": 3.0}
"""Per-byte terms anchored to the calibration's measured DRAM copy rate (``stream``) instead of chosen freely on their
grid: kernel class (``"matmul"`` for the GEMM packing term) -> bytes moved per byte of the term, so the term is that /
the DRAM copy rate, in s per byte. Empty: every term free on its grid (the fit before session cpu16).

``conv_dense``: 3 (oneDNN reads the NCHW weights, writes them blocked, and the convolution reads them again), about
0.10 ns/B at this VM's 27-33 GB/s. Chosen freely, the term jumped between quick calibrations taken minutes apart on a
steady VM (0.04, 0.11, 0.11, 0.11, 0.07 ns/B; session cpu15's five calibrations), because it is collinear with the
FLOP law's shape (the law's ``alpha`` went with it, 1.0 or 0.05): the same densenet169 b2/160 was predicted 77-146 ms.
Anchored at 3 bytes, the five calibrations' worst disagreement on 75 development cases went from 88% to 36% and their
accuracy did not change (mean median APE 11.9% both). 2 bytes gave a worst of 53%; 1 byte 38%, but on cpu13/cpu14's three
calibrations its mean median APE was 11.2% against 10.2% free and 9.8% at 3 bytes (``benchmarks/cpu_term_spread.py``,
docs/validation.md, session cpu16). The median disagreement (17-18%) is not this term's: it is each calibration's
overall level. Anchoring the 1x1 activation term or the GEMM packing term as well did not lower the
spread, so they stay free."""
PER_BYTE_ANCHOR_BAND = 1.0
"""How far an anchored term may leave its anchor: the grid's candidates within [anchor / band, anchor x band], the
anchor itself always among them (1: the term is the anchor). A band of 1.5 around 2 bytes let the term jump again
(worst disagreement 81%)."""


def anchored_grid(cls: str, grid_s_per_mb: Sequence[float], dram_bytes_per_s: float) -> Sequence[float]:
    """``grid_s_per_mb`` cut to the band around ``cls``'s anchor (:data:`PER_BYTE_ANCHOR`), unchanged where ``cls`` has
    no anchor or the DRAM rate is unknown."""
    if cls not in PER_BYTE_ANCHOR or dram_bytes_per_s <= 0:
        return grid_s_per_mb
    a = PER_BYTE_ANCHOR[cls] / dram_bytes_per_s * 1e6  # s per MB
    lo, hi = a / PER_BYTE_ANCHOR_BAND, a * PER_BYTE_ANCHOR_BAND
    return tuple(sorted({a, *(g for g in grid_s_per_mb if lo <= g <= hi)}))


WEIGHT_TERM = True
"""Fit :data:`WEIGHT_TERM_CLASSES` with their weight-byte term (False: one FLOP law each, as before; ablations)."""
OUTPUT_TERM = True
"""Fit :data:`OUTPUT_TERM_CLASSES` with their output-byte term (False: one law each, as before; for ablations)."""
GROUPED_BYTES_AND_FMA = False
"""Fit ``conv_grouped`` as an activation-bytes law plus an FMA rate (:func:`fit_grouped`) instead of one FLOP
power law. Off: on isolated microbenchmarks it is the better model (leave-one-out over a quick calibration's
24 grouped rows: 17% median / 65% worst against 29% / 89%), but on whole models it priced grouped networks
slower than the FLOP law fitted on the same rows (benchmarks/cpu_latency_dev.py: RegNetX-800MF b4 +20% vs
+15%, ResNeXt-101 b1 +11% vs +6%, RegNet-Y-400MF b8 +7% vs -1%): the calibration measures the bytes term on
cold inputs, while in a network a grouped conv reads the activations the previous layer just wrote, from
cache. docs/validation.md, session cpu7."""
GROUPED_ETA_GRID = tuple(0.30 + 0.025 * i for i in range(29))
"""Candidate FMA rates of a grouped convolution's per-group work, as fractions of the calibrated peak (0.30-1.00)."""


def fit_grouped(rows: Sequence[Measurement], peak_flops: float, peak_bytes_per_s: float, fault_s_per_byte: float,
                loss: str) -> tuple[Any, float, dict[str, Any]]:
    """``(law over bytes, FMA FLOP/s, stats)`` of grouped convolutions: ``t = grouped_time_s(law(bytes),
    FLOPs / rate)`` (:data:`fxenergy.perf.cpu.GROUPED_OVERLAP_P`). The rate is chosen on
    :data:`GROUPED_ETA_GRID` by the lowest sum of squared log errors, the bytes law refitted on what each
    candidate leaves of the measured times; page faults above the mmap threshold are taken off first."""
    from fxenergy.perf.cpu import GROUPED_OVERLAP_P, grouped_time_s

    p = GROUPED_OVERLAP_P
    flops = np.array([m.flops for m in rows], dtype=float)
    nbytes = np.array([m.work("bytes") for m in rows], dtype=float)
    t_all = np.array([m.median_s for m in rows])
    faults = np.array([fault_s(m, fault_s_per_byte) for m in rows])
    t = np.maximum(t_all - faults, 0.1 * t_all)
    best: tuple[float, Any, float] | None = None
    for eta in GROUPED_ETA_GRID:
        fma = flops / (eta * peak_flops)
        rest = np.maximum(np.maximum(t**p - fma**p, 0.0) ** (1.0 / p), 0.1 * t)
        try:
            law = fit_power_law(nbytes, rest, peak_bytes_per_s, unit=UNITS["cpu"]["bytes"], method="log", loss=loss)
        except Exception:  # noqa: BLE001 - a candidate the optimiser cannot fit is not a candidate
            continue
        err = float(np.sum(np.log(grouped_time_s(law.duration_s(nbytes, peak_bytes_per_s), fma) / t) ** 2))
        if best is None or err < best[0]:
            best = (err, law, eta * peak_flops)
    if best is None:
        raise ValueError("no grouped-convolution law could be fitted")
    _, law, rate = best
    ape = np.abs((grouped_time_s(law.duration_s(nbytes, peak_bytes_per_s), flops / rate) + faults) / t_all - 1)
    stats = {"rows": len(rows), "basis": "bytes+flops", "mdape": round(float(np.median(ape)), 4),
             "max_ape": round(float(np.max(ape)), 4), "fma_flops_per_s": round(rate)}
    return law, rate, stats


def fit_cpu_perf(
    ms: Sequence[Measurement], peak_flops: float, peak_bytes_per_s: float, *, threads: int, dispatch_s: float,
    fitted_on: Mapping[str, Any] | None = None, fault_s_per_byte: float = 0.0, loss: str = "soft_l1",
    dram_bytes_per_s: float = 0.0,
) -> Any:
    """Kernel-class curves of :mod:`fxenergy.perf.cpu` (a :class:`~fxenergy.perf.cpu.CpuPerfParams`):
    one power law per class with at least 4 measurements (dense / 1x1 / grouped / depthwise
    convolutions apart), over FLOPs (compute classes) or bytes moved. Page faults of outputs above the mmap
    threshold (``fault_s_per_byte``, measured) are taken off the durations before fitting and added
    back per node at prediction time. The weight-streaming rate of batch-1 linears
    (:func:`weight_stream_bytes_per_s`) is fitted first; compute-class rows it explains
    (:data:`MEMORY_BOUND_SHARE`) are left out of the FLOP curves, since the duration model prices them
    by their weight bytes. In-sample errors in ``fitted_on["in_sample"]``."""
    from fxenergy.perf.cpu import KERNEL_CLASSES, CpuPerfParams, class_basis

    weight_bps = weight_stream_bytes_per_s(ms)
    weight_law = fit_weight_law(ms, peak_bytes_per_s)
    if weight_law is not None:
        ms = [m for m in ms if not param_bytes(m)
              or weight_law.duration_s(param_bytes(m), peak_bytes_per_s) < MEMORY_BOUND_SHARE * m.median_s]
    elif weight_bps > 0:
        ms = [m for m in ms if param_bytes(m) / weight_bps < MEMORY_BOUND_SHARE * m.median_s]
    ms = inplace_rows(ms)
    laws, stats, packing, grouped_rate, out_s, weight_s = {}, {}, 0.0, 0.0, {}, {}
    act_s: dict[str, float] = {}
    act_free: dict[str, float] = {}
    groups = {cls: [m for m in ms if measurement_class(m) == cls] for cls in sorted({measurement_class(m) for m in ms})}
    # all convolutions together: the fallback of a convolution kind with too few measurements of its own
    groups["convolution"] = [m for m in ms if m.family == "convolution"]
    groups["conv_pointwise"] = pointwise_law_rows(groups.get("conv_pointwise", []))
    for cls, rows in groups.items():
        if len(rows) < 4:
            continue
        if cls == "conv_grouped" and GROUPED_BYTES_AND_FMA:  # activation bytes and FMA work (off: see the flag)
            laws[cls], grouped_rate, stats[cls] = fit_grouped(rows, peak_flops, peak_bytes_per_s, fault_s_per_byte, loss)
            continue
        # a class's law over its class's work, the family fallback's over the family's: as the duration model prices them
        basis = class_basis(cls) if cls in KERNEL_CLASSES else FAMILIES[cls].basis
        work = np.array([m.work(basis) for m in rows])
        t_all = np.array([m.median_s for m in rows])
        faults = np.array([fault_s(m, fault_s_per_byte, threads) for m in rows])
        t = np.maximum(t_all - faults, 0.1 * t_all)  # the rest: what the curves describe
        peak = peak_flops if basis == "flops" else peak_bytes_per_s
        if cls == "matmul":  # batched linears also pay per weight byte (packing); GEMVs are left out above
            weights = np.array([param_bytes(m) if m.shape[0][0] > 1 else 0 for m in rows], dtype=float)
            law, packing = fit_law_plus_per_byte(work, weights, t, peak, loss, grid_s_per_mb=anchored_grid(
                cls, PACKING_GRID_S_PER_MB, dram_bytes_per_s))
            faults = faults + weights * packing
        elif cls in WEIGHT_TERM_CLASSES and WEIGHT_TERM:  # dense convolutions also pay per weight byte (reorder)
            weights = np.array([param_bytes(m) for m in rows], dtype=float)
            law, weight_s[cls] = fit_law_plus_per_byte(work, weights, t, peak, loss, basis=basis,
                                                       grid_s_per_mb=anchored_grid(
                                                           cls, WEIGHT_TERM_CLASSES[cls], dram_bytes_per_s))
            faults = faults + weights * weight_s[cls]
        elif cls in ACTIVATION_TERM_CLASSES and ACTIVATION_TERM:  # 1x1 convolutions also pay per activation byte
            acts = np.array([max(m.bytes - param_bytes(m), 0) for m in rows], dtype=float)
            law, act_s[cls], act_free[cls] = fit_activation_term(work, acts, t, peak, loss, basis=basis,
                                                                 grid_s_per_mb=anchored_grid(
                                                                     cls, ACTIVATION_TERM_CLASSES[cls], dram_bytes_per_s))
            faults = faults + np.maximum(acts - act_free[cls], 0.0) * act_s[cls]
        elif cls in OUTPUT_TERM_CLASSES and OUTPUT_TERM:  # stems and reductions also pay per output byte
            outs = np.array([m.out_bytes for m in rows], dtype=float)
            law, out_s[cls] = fit_law_plus_per_byte(work, outs, t, peak, loss, basis=basis,
                                                     grid_s_per_mb=anchored_grid(
                                                         cls, OUTPUT_TERM_CLASSES[cls], dram_bytes_per_s))
            faults = faults + outs * out_s[cls]
        else:
            law = fit_power_law(work, t, peak, unit=UNITS["cpu"][basis], method="log", loss=loss)
        ape = np.abs((law.duration_s(work, peak) + faults) / t_all - 1)
        laws[cls] = law
        stats[cls] = {"rows": len(rows), "basis": basis, "mdape": round(float(np.median(ape)), 4),
                      "max_ape": round(float(np.max(ape)), 4)}
    return CpuPerfParams(laws, peak_flops, peak_bytes_per_s, threads, dispatch_s,
                         {**(fitted_on or {}), "in_sample": stats, "fault_s_per_byte": fault_s_per_byte,
                          **({"per_byte_anchor": {"bytes_per_byte": dict(PER_BYTE_ANCHOR), "band": PER_BYTE_ANCHOR_BAND}}
                             if PER_BYTE_ANCHOR and dram_bytes_per_s > 0 else {})},
                         fault_s_per_byte=fault_s_per_byte, dram_bytes_per_s=dram_bytes_per_s,
                         weight_bytes_per_s=weight_bps, weight_law=weight_law, packing_s_per_byte=packing,
                         grouped_flops_per_s=grouped_rate, out_s_per_byte={k: v for k, v in out_s.items() if v > 0},
                         weight_s_per_byte={k: v for k, v in weight_s.items() if v > 0},
                         act_s_per_byte={k: v for k, v in act_s.items() if v > 0},
                         act_free_bytes={k: v for k, v in act_free.items() if act_s.get(k, 0.0) > 0 and v > 0})
