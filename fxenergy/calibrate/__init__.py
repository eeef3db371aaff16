"""``fxenergy calibrate``: fit the HEF curves, CPU kernel-class curves and energy elasticities of THIS machine.

:func:`run_calibration` times microbenchmarks of every op family (matmul, bmm, convolution,
elementwise, normalization, softmax, reduction, pooling, embedding) over a range of sizes shaped like
real layers, on the local CPU or CUDA device: warm-up, then the median over ``repeats`` of the mean
of ``calls`` back-to-back calls. Consecutive calls cycle through copies of their inputs spanning twice
the last-level cache, so that every call reads cold activations and weights, as the layers of a
model do (warm-cache microbenchmarks made memory-bound ops look up to 2.4x faster than they run
inside models). A set of repeats disturbed by other processes (:class:`CpuWatch`) is taken again
once they are gone. The work of every microbenchmark (FLOPs, bytes moved) is counted by
fxenergy's own cost pass on the same op captured on meta tensors, so the conventions the curves are
fitted in are those the duration pass sees at run time. Each family then gets a seed 004 power law
``eta(c) = eta_max (1 - exp(-k c**alpha))`` (:func:`~fxenergy.predictors.hef_law.fit_power_law`), ``c``
in FLOPs (compute-bound families, relative to a FLOP/s peak) or in bytes moved (memory-bound ones,
relative to a bytes/s peak).

Peaks: the detected profile's fp32 FLOP/s and memory bandwidth, except where a measurement beats
them (a CPU's detected figures are estimates; caches beat DRAM bandwidth): then the peak becomes the
best measured throughput x 1.05, and ``notes`` and ``hef.fitted_on.peaks`` say so. Estimated profile
figures that a calibration measures (DRAM bandwidth by a large copy, per-op dispatch overhead by a
one-element add) are replaced by the measurements, and ``sources`` say so.

Energy (seed 004 Eq. 2, ``e = h + sum h_family t_family``): with a meter (RAPL package counters on
CPU, NVML's total-energy counter on CUDA) each family's elasticity ``h_family`` is the mean power (W)
drawn while that family's microbenchmarks run, and the idle power is measured too (``h = 0``);
without one, elasticities come from the profile's idle..TDP power model
(:mod:`fxenergy.predictors.power`) at each family's measured utilisation. ``energy_source`` says which:
``"rapl"``, ``"nvml"`` or ``"profile"``.

On CPUs the same measurements also give the kernel-class curves of :mod:`fxenergy.perf.cpu`
(:func:`fit_cpu_perf`: dense / stem / 1x1 / grouped / depthwise convolutions apart, convolutions
over a batch sweep 1..64, activation functions and tanh apart from cheap element-wise ops; batch-1
linears give a weight-streaming curve, batched linears a per-weight-byte packing cost beside their
FLOP curve, and the DRAM copy the cache floor's DRAM bandwidth), which the ``physical`` backend reads, with the thread count the run had
(``torch.get_num_threads()``, the cgroup CPU quota, the affinity) and, where RAPL is readable, the
package's idle and per-core power. ``quick`` leaves out what :func:`skipped_in_quick` lists.

A shared host slows a VM by up to 2x for minutes without reporting steal, so on CPUs the run also takes a speed
canary (:func:`speed_canary`: a 512^3 matmul's GFLOP/s and a 32 MiB copy's GB/s, ~20 ms) at its start, its end and
between benchmarks every :data:`~fxenergy.calibrate.timing.CANARY_EVERY_S` seconds (:class:`SpeedTrace`; 1.2-1.4% of a quick
run). At its start, its end and every :data:`~fxenergy.calibrate.timing.SUSTAINED_EVERY_S` seconds a point also holds a
sustained canary (:func:`~fxenergy.calibrate.timing.sustained_canary`: the same kernels back to back for ~0.6 s, median
and 10th percentile; a best-of-5 misses a host that slows the VM part of the time), which the latency benchmark compares
its cases' own sustained readings with. The file keeps the trace (``speed_trace``) and each measurement's time and interpolated canary; the fit sees every
time put on the run's typical state, x (the median canary within 10 s of it / the run's median canary), the copy canary
for memory-bound rows beyond the last-level cache and the matmul canary for the rest, the factor clamped to 0.5-2
(:func:`normalise_drift`; the notes state the factors).

The result is ONE JSON file (schema ``fxenergy.calibration/1``) holding the calibrated hardware profile,
the HEF parameter set, the CPU curves and the raw measurements; ``--hardware FILE`` reads it
(:func:`load_calibration`, :func:`load_cpu_perf`).

The package, one concern per module: ``benches`` (what is measured), ``timing`` (how it is timed),
``fitting`` (curves from measurements), ``meters`` (RAPL/NVML energy counters; ``fxenergy.measure``
will replace them), ``files`` (the calibration file), ``run`` (:func:`run_calibration`).

>>> from fxenergy.calibrate import rapl_delta_uj
>>> rapl_delta_uj(start=990, end=10, max_range=1000)  # the counter wrapped: 10 + 1000 - 990
20
"""

from __future__ import annotations

from fxenergy.calibrate.benches import Bench, benchmarks, skipped_in_quick
from fxenergy.calibrate.files import (
    ENERGY_SOURCES,
    SCHEMA,
    Calibration,
    is_calibration_file,
    load_calibration,
    load_cpu_perf,
    save_calibration,
)
from fxenergy.calibrate.fitting import fit_cpu_perf, fit_families, normalise_drift
from fxenergy.calibrate.meters import MeterUnavailable, NvmlMeter, RaplMeter, rapl_delta_uj
from fxenergy.calibrate.run import run_calibration
from fxenergy.calibrate.timing import CpuWatch, Measurement, SpeedTrace, measure, speed_canary, wait_for_quiet

__all__ = [
    "SCHEMA",
    "ENERGY_SOURCES",
    "Bench",
    "Measurement",
    "Calibration",
    "run_calibration",
    "benchmarks",
    "skipped_in_quick",
    "measure",
    "fit_families",
    "fit_cpu_perf",
    "save_calibration",
    "load_calibration",
    "load_cpu_perf",
    "is_calibration_file",
    "RaplMeter",
    "NvmlMeter",
    "MeterUnavailable",
    "rapl_delta_uj",
    "CpuWatch",
    "wait_for_quiet",
    "speed_canary",
    "SpeedTrace",
    "normalise_drift",
]
