"""``fxenergy calibrate``: fit the HEF curves and energy elasticities of THIS machine.

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

The result is ONE JSON file (schema ``fxenergy.calibration/1``) holding the calibrated hardware profile,
the HEF parameter set and the raw measurements; ``--hardware FILE`` reads it (:func:`load_calibration`).

>>> from fxenergy.calibrate import rapl_delta_uj
>>> rapl_delta_uj(start=990, end=10, max_range=1000)  # the counter wrapped: 10 + 1000 - 990
20
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fxenergy._files import check_document, read_json, write_atomic
from fxenergy.errors import UserInputError
from fxenergy.hardware import HardwareProfile, detect_local
from fxenergy.predictors.hef_law import (
    FAMILIES, FamilyLaw, HEFEnergy, HEFParameters, family_of, fit_power_law, work_for,
)

__all__ = [
    "SCHEMA",
    "ENERGY_SOURCES",
    "Bench",
    "Measurement",
    "Calibration",
    "run_calibration",
    "benchmarks",
    "measure",
    "fit_families",
    "save_calibration",
    "load_calibration",
    "is_calibration_file",
    "RaplMeter",
    "NvmlMeter",
    "MeterUnavailable",
    "rapl_delta_uj",
    "CpuWatch",
    "wait_for_quiet",
]

SCHEMA = "fxenergy.calibration/1"
ENERGY_SOURCES = ("rapl", "nvml", "profile")
_KEYS = ("schema", "profile", "hef", "measurements", "energy_source", "created", "fxenergy_version", "power", "notes")
_PEAK_MARGIN = 1.05  # a peak raised by a measurement is the best measured throughput x this
_CPU_W_PER_CORE_GUESS = 6.0  # TDP guess when the profile has none: server CPUs have 3.5-8 W of TDP per core
_UNITS = {"cpu": {"flops": "GFLOP", "bytes": "MB"}, "cuda": {"flops": "TFLOP", "bytes": "GB"}}

Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------------------------------
# microbenchmarks


@dataclass(frozen=True, slots=True)
class Bench:
    """One microbenchmark: ``fn(*inputs, **kwargs)``.

    ``inputs`` are shapes of float32 tensors (uniform in [0.5, 1.5)), or ``(shape, high)`` pairs for int64
    index tensors with values in ``[0, high)``. ``family`` is the op family the call must land in
    once captured (checked by :func:`measure`).
    """

    family: str
    op: str
    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def tensors(self, device: torch.device | str, gen: torch.Generator | None = None) -> list[torch.Tensor]:
        out = []
        for spec in self.inputs:
            if _is_index(spec):
                shape, high = spec
                out.append(torch.randint(0, high, shape, generator=gen).to(device))
            else:
                out.append((torch.rand(spec, generator=gen) + 0.5).to(device))  # in [0.5, 1.5): valid variances
        return out

    def input_bytes(self) -> int:
        """Bytes of all inputs (int64 indices, float32 tensors)."""
        return sum(math.prod(s[0]) * 8 if _is_index(s) else math.prod(s) * 4 for s in self.inputs)

    def shapes(self) -> list[list[int]]:
        return [list(s[0] if _is_index(s) else s) for s in self.inputs]


def _is_index(spec: Any) -> bool:
    return len(spec) == 2 and isinstance(spec[0], tuple)


class _Call(torch.nn.Module):
    """``fn(*xs, **kwargs)`` as a module, for capture."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]):
        super().__init__()
        self.fn, self.kw = fn, dict(kwargs)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs, **self.kw)


def _contiguous_t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).contiguous()


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat((a, b), dim=1)  # channels, as DenseNet and SqueezeNet do


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def _last_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=-1)


def _batch_norm(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, mean, var, w, b, training=False)


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), w, b)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def _pick(items: Sequence[Any], quick: bool, every: int = 2) -> list[Any]:
    """All items, or every ``every``-th (always keeping the last) in quick mode."""
    if not quick:
        return list(items)
    picked = list(items[::every])
    if items and picked[-1] is not items[-1]:
        picked.append(items[-1])
    return picked


_CONVS = {  # (in ch, out ch, side, kernel, stride, groups)
    "dense": ((3, 64, 224, 7, 2, 1), (64, 64, 56, 3, 1, 1), (128, 128, 28, 3, 1, 1), (256, 256, 14, 3, 1, 1),
              (512, 512, 7, 3, 1, 1), (64, 128, 56, 3, 2, 1), (3, 32, 224, 3, 2, 1), (128, 32, 28, 3, 1, 1),
              (3, 768, 224, 16, 16, 1), (96, 256, 27, 5, 1, 1)),
    "pointwise": ((64, 256, 56, 1, 1, 1), (256, 64, 56, 1, 1, 1), (512, 128, 28, 1, 1, 1), (1024, 256, 14, 1, 1, 1),
                  (2048, 512, 7, 1, 1, 1), (16, 96, 112, 1, 1, 1), (96, 24, 56, 1, 1, 1), (576, 160, 7, 1, 1, 1),
                  (240, 40, 28, 1, 1, 1), (384, 1536, 14, 1, 1, 1)),
    "depthwise": ((32, 32, 112, 3, 1, 32), (144, 144, 56, 3, 1, 144), (192, 192, 28, 3, 1, 192),
                  (384, 384, 14, 3, 1, 384), (960, 960, 7, 3, 1, 960), (144, 144, 56, 5, 2, 144),
                  (240, 240, 28, 5, 1, 240), (672, 672, 14, 5, 1, 672), (96, 96, 56, 7, 1, 96), (384, 384, 14, 7, 1, 384)),
    "grouped": ((48, 48, 56, 3, 1, 6), (104, 104, 28, 3, 1, 13), (208, 208, 14, 3, 1, 26), (440, 440, 7, 3, 1, 55)),
    "squeeze-excite": ((672, 168, 1, 1, 1, 1), (168, 672, 1, 1, 1, 1), (96, 8, 1, 1, 1, 1), (1152, 48, 1, 1, 1, 1)),
}
"""Convolution shapes of the calibration, as in ResNet/VGG (dense 3x3, 7x7 stems, ViT's patchify), bottlenecks
(1x1), MobileNet/EfficientNet/ConvNeXt (depthwise 3x3..7x7), RegNet (grouped) and squeeze-excitation (1x1 on 1x1)."""
_K3S2 = {"kernel_size": 3, "stride": 2, "padding": 1}
_K3S2_CEIL = {"kernel_size": 3, "stride": 2, "ceil_mode": True}
_K2S2 = {"kernel_size": 2, "stride": 2}
_POOLS = (
    ("max_pool2d", 64, 112, _K3S2), ("max_pool2d", 96, 109, _K3S2_CEIL), ("max_pool2d", 256, 54, _K3S2_CEIL),
    ("max_pool2d", 512, 27, _K3S2_CEIL), ("max_pool2d", 64, 224, _K2S2), ("max_pool2d", 128, 112, _K2S2),
    ("max_pool2d", 256, 56, _K2S2), ("max_pool2d", 512, 28, _K2S2), ("max_pool2d", 512, 14, _K2S2),
    ("avg_pool2d", 128, 56, _K2S2), ("avg_pool2d", 256, 28, _K2S2), ("avg_pool2d", 512, 14, _K2S2),
    ("adaptive_avg_pool2d", 512, 7, {"output_size": 7}), ("adaptive_avg_pool2d", 512, 14, {"output_size": 7}),
)


def benchmarks(device: str = "cpu", *, quick: bool = False) -> list[Bench]:
    """The microbenchmarks of a calibration, shaped like real layers (CNN convs, transformer linears,
    attention); sizes span ~1e3..1e10 FLOP and ~1e3..1e8 bytes. CUDA runs larger batches on top.

    >>> {b.family for b in benchmarks(quick=True)} >= {"matmul", "convolution", "embedding"}
    True
    """
    big = device == "cuda"
    batches = (1, 4, 32) if big else (1, 4)
    out: list[Bench] = []

    # matmul: linear layers (tokens x in -> out) and plain mm
    tokens = (1, 8, 32, 128, 512, 2048) if not big else (1, 32, 512, 4096, 16384)
    linears = ((256, 256), (768, 768), (768, 3072), (3072, 768), (1024, 4096), (512, 1000), (2048, 1000),
               (768, 2304), (768, 50257))  # the last: a language-model head over GPT-2's vocabulary
    for m in tokens:
        for kin, kout in _pick(linears, quick, 3):
            if m * kin * kout > (2e10 if big else 5e9):
                continue
            out.append(Bench("matmul", "linear", F.linear, ((m, kin), (kout, kin), (kout,))))
    for n in _pick((64, 128, 256, 512, 1024) + ((4096, 8192) if big else ()), quick):
        out.append(Bench("matmul", "mm", torch.mm, ((n, n), (n, n))))

    # bmm: attention scores / outputs and fused SDPA, (batch*heads, seq, 64)
    heads, d = 12, 64
    for b in batches:
        for s in _pick((32, 64, 128, 256, 512) + ((1024, 2048) if big else ()), quick):
            bh = b * heads
            out.append(Bench("bmm", "bmm", torch.bmm, ((bh, s, d), (bh, d, s))))
            out.append(Bench("bmm", "bmm", torch.bmm, ((bh, s, s), (bh, s, d))))
            out.append(Bench("bmm", "sdpa", _sdpa, ((b, heads, s, d),) * 3))

    # convolution: (in ch, out ch, side, kernel, stride, groups), by kind, as in the common CNN families
    for b in batches:
        for kind, shapes in _CONVS.items():
            for cin, cout, side, k, stride, groups in _pick(shapes, quick, 2 if b == 1 else 3):
                out.append(Bench("convolution", f"conv2d {kind} k{k}", F.conv2d,
                                 ((b, cin, side, side), (cout, cin // groups, k, k), (cout,)),
                                 {"stride": stride, "padding": k // 2 if stride < k else 0, "groups": groups}))

    # memory-bound families, by number of elements
    sizes = (2**10, 2**13, 2**16, 2**18, 2**20, 2**22) + ((2**24, 2**26) if big else ())
    for n in _pick(sizes, quick):
        out += [Bench("elementwise", "add", torch.add, ((n,), (n,))),
                Bench("elementwise", "mul", torch.mul, ((n,), (n,))),
                Bench("elementwise", "relu", F.relu, ((n,),)),
                Bench("elementwise", "gelu", F.gelu, ((n,),))]
        if not quick:
            out += [Bench("elementwise", "tanh", torch.tanh, ((n,),)),
                    Bench("elementwise", "hardtanh", F.hardtanh, ((n,),)),
                    Bench("elementwise", "hardswish", F.hardswish, ((n,),)),
                    Bench("elementwise", "silu", F.silu, ((n,),)),
                    Bench("elementwise", "sigmoid", torch.sigmoid, ((n,),))]
        rows = max(1, n // 768)
        out.append(Bench("normalization", "layer_norm", _layer_norm, ((rows, 768), (768,), (768,))))
        out.append(Bench("softmax", "softmax", torch.softmax, ((max(1, n // 128), 128),), {"dim": -1}))
        out.append(Bench("reduction", "sum", _last_sum, ((max(1, n // 768), 768),)))
        out.append(Bench("embedding", "embedding", F.embedding, (((max(1, n // 768),), 30522), (30522, 768))))
        out.append(Bench("embedding", "contiguous", _contiguous_t, ((max(1, n // 8192), 128, 64),)))
    for b in batches:
        for c, side in _pick(((32, 112), (64, 112), (64, 56), (128, 28), (256, 14), (512, 7), (1024, 7), (2048, 7)),
                             quick):
            x = (b, c, side, side)
            out.append(Bench("normalization", "batch_norm", _batch_norm, (x, (c,), (c,), (c,), (c,))))
            out.append(Bench("reduction", "mean", _spatial_mean, (x,)))
            out.append(Bench("embedding", "cat", _cat, (x, (b, 32, side, side))))
            out.append(Bench("elementwise", "mul (SE scale)", torch.mul, (x, (b, c, 1, 1))))
        # pooling as in ResNet/DenseNet stems, SqueezeNet (ceil mode), VGG, DenseNet transitions, VGG's head
        for op, c, side, kw in _pick(_POOLS, quick):
            fn = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d, "adaptive_avg_pool2d": F.adaptive_avg_pool2d}[op]
            out.append(Bench("pooling", op, fn, ((b, c, side, side),), kw))
    return out


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed microbenchmark: its work as fxenergy counts it and its median duration (s).

    ``bytes`` is bytes read + written; ``flops`` contraction FLOPs (2 x MACs); ``calls`` calls were
    timed back to back in each of ``repeats`` repeats; ``spread`` is slowest / fastest repeat - 1;
    consecutive calls cycled through ``input_copies`` copies of the inputs (cold caches).
    """

    family: str
    op: str
    shape: tuple[tuple[int, ...], ...]
    params: Mapping[str, Any]
    flops: int
    elementwise_flops: int
    bytes: int
    median_s: float
    repeats: int
    calls: int
    spread: float = 0.0
    input_copies: int = 1

    def work(self, basis: str) -> float:
        return work_for(basis, flops=self.flops, elementwise_flops=self.elementwise_flops, bytes_moved=self.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "op": self.op, "shape": [list(s) for s in self.shape],
                "params": dict(self.params), "flops": self.flops, "elementwise_flops": self.elementwise_flops,
                "bytes": self.bytes, "median_s": self.median_s, "repeats": self.repeats, "calls": self.calls,
                "spread": self.spread, "input_copies": self.input_copies}


def _work_of(bench: Bench) -> tuple[int, int, int]:
    """(flops, elementwise_flops, bytes) of ``bench`` as :func:`fxenergy.annotate` counts them.

    Refuses a benchmark whose captured nodes do not all fall in its family: the fit would mix families.
    """
    from fxenergy.analysis import analyse  # costs only: the hardware-free layer (api sits above calibrate)

    meta = [torch.empty(s[0], dtype=torch.long, device="meta") if _is_index(s) else torch.empty(s, device="meta")
            for s in bench.inputs]
    rows = [r for r in analyse(_Call(bench.fn, bench.kwargs), tuple(meta)).rows if not r.free]
    fams = {family_of(r.op) for r in rows}
    if fams != {bench.family}:
        raise RuntimeError(f"microbenchmark {bench.op} {bench.shapes()} captured as families {sorted(fams)}, "
                           f"not {bench.family!r}")
    return (sum(r.flops for r in rows), sum(r.elementwise_flops for r in rows),
            sum(r.bytes_read + r.bytes_written for r in rows))


class _Timer:
    """Median seconds per call: warm-up, then ``repeats`` x (``calls`` calls back to back)."""

    def __init__(self, device: torch.device, *, target_s: float, repeats: int, warmup: int = 2, retries: int = 3,
                 wait_budget_s: float = 0.0):
        self.device, self.target_s, self.repeats, self.warmup, self.retries = device, target_s, repeats, warmup, retries
        self.wait_budget_s = wait_budget_s  # seconds this timer may spend in all waiting for other load to pass
        self.cuda = device.type == "cuda"

    def _run(self, call: Callable[[], Any], n: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                call()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / n  # ms -> s
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - t0) / n

    def __call__(self, call: Callable[[], Any]) -> tuple[float, int, float]:
        """(median seconds per call, calls per repeat, spread = max/min of the repeats - 1).

        A set of repeats whose slowest is over 1.3x its fastest, or during which other processes
        used over 10% of the CPUs (:class:`CpuWatch`), was disturbed: it is taken again, at most
        ``retries`` times, after waiting for the other load to pass (:func:`wait_for_quiet`, within
        ``wait_budget_s``), and the set with the lowest median kept.
        """
        for _ in range(self.warmup):
            call()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        single = min(self._run(call, 1) for _ in range(3))  # one preempted call must not set n
        n = int(min(20_000, max(1, self.target_s / max(single, 1e-7))))
        best: tuple[float, int, float] | None = None
        for attempt in range(self.retries + 1):
            if attempt and self.wait_budget_s > 0:
                self.wait_budget_s -= wait_for_quiet(min(5.0, self.wait_budget_s))
            with CpuWatch() as watch:
                samples = [self._run(call, n) for _ in range(self.repeats)]
            med, spread = statistics.median(samples), max(samples) / min(samples) - 1
            if best is None or med < best[0]:
                best = (med, n, spread)
            if spread <= 0.3 and (watch.share or 0.0) <= 0.1:
                break
        return best


class CpuWatch:
    """Share of this machine's CPU time that OTHER processes (and the hypervisor's steal) used while
    the ``with`` block ran, from ``/proc/stat`` (Linux; ``share`` is None elsewhere).

    Timings taken while other processes compete for the cores are inflated, multi-threaded ops the
    most (they wait for a whole scheduler time slice); calibration records the share in its notes.
    """

    def __init__(self) -> None:
        self.share: float | None = None

    @staticmethod
    def _busy_s() -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        v = [int(x) for x in fields]
        busy = sum(v[:8]) - v[3] - v[4]  # user nice system [idle iowait] irq softirq steal
        return busy / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> CpuWatch:
        self._t0, self._busy0, self._own0 = time.perf_counter(), self._busy_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        busy1, wall = self._busy_s(), time.perf_counter() - self._t0
        if busy1 is None or self._busy0 is None or wall <= 0:
            return
        other = (busy1 - self._busy0) - (_own_cpu_s() - self._own0)
        self.share = max(0.0, other / (wall * (os.cpu_count() or 1)))


def wait_for_quiet(max_wait_s: float, *, threshold: float = 0.05, window_s: float = 0.25) -> float:
    """Sleep in ``window_s`` steps until other processes use under ``threshold`` of the CPUs, or
    ``max_wait_s`` has passed; returns the seconds waited (0 where /proc/stat is unreadable)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        with CpuWatch() as w:
            time.sleep(window_s)
        if w.share is None or w.share < threshold:
            break
    return time.perf_counter() - t0


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def measure(
    benches: Sequence[Bench], device: str = "cpu", *, target_s: float = 0.01, repeats: int = 7,
    wait_budget_s: float = 0.0, cold_bytes: int = 0, progress: Progress | None = None,
) -> list[Measurement]:
    """Time every benchmark on ``device`` and count its work with fxenergy's cost pass.

    Each repeat runs enough back-to-back calls to last about ``target_s`` seconds; the median over
    ``repeats`` of the per-call mean is kept. Uses PyTorch's default thread count. With ``cold_bytes``
    (e.g. twice the last-level cache), consecutive calls cycle through up to 64 copies of the inputs
    spanning that many bytes, so that each call reads its inputs (activations, weights) from memory
    rather than from a cache a previous call warmed, as the layers of a model do.
    """
    dev = _device(device)
    timer = _Timer(dev, target_s=target_s, repeats=repeats, wait_budget_s=wait_budget_s)
    gen = torch.Generator().manual_seed(0)
    out = []
    works = [_work_of(b) for b in benches]  # outside inference mode, which changes what capture sees
    with torch.inference_mode():
        for i, (b, (flops, ew, nbytes)) in enumerate(zip(benches, works)):
            if progress:
                progress(b.family, i, len(benches))
            copies = min(64, max(1, -(-cold_bytes // max(1, b.input_bytes()))))
            first = b.tensors(dev, gen)
            sets = [first] + [[x.clone() for x in first] for _ in range(copies - 1)]  # same values, other memory
            turn = itertools.cycle(sets)
            t, n, spread = timer(lambda: b.fn(*next(turn), **b.kwargs))  # noqa: B023 - called before the next iteration
            out.append(Measurement(b.family, b.op, tuple(tuple(s) for s in b.shapes()), dict(b.kwargs), flops, ew,
                                   nbytes, t, repeats, n, round(spread, 4), copies))
            del first, sets, turn
    if progress:
        progress("done", len(benches), len(benches))
    return out


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserInputError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError("calibrating on 'cuda' needs a CUDA device, and torch.cuda.is_available() is "
                                 "False; calibrate with --device cpu")
        return torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
    if dev.type != "cpu":
        raise UserInputError(f"cannot calibrate on device {device!r}; use 'cpu' or 'cuda'")
    return dev


# --------------------------------------------------------------------------------------------------
# fitting


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
            "value": best_rate * _PEAK_MARGIN if raised else spec, "profile": spec, "best_measured": best_rate,
            "best_op": f"{best.op} {best.shape}" if best else None, "raised": raised,
        }
    return out


def fit_families(
    ms: Sequence[Measurement], peak_flops: float, peak_bytes_per_s: float, *, units: Mapping[str, str] | None = None,
) -> tuple[dict[str, FamilyLaw], dict[str, dict[str, Any]]]:
    """A power law per family of ``ms`` (at least 4 measurements each), and per-family fit statistics
    (in-sample median / worst absolute percentage error of duration)."""
    units = units or _UNITS["cpu"]
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


# --------------------------------------------------------------------------------------------------
# the calibration


@dataclass(frozen=True, slots=True)
class Calibration:
    """What :func:`run_calibration` returns and :func:`save_calibration` writes."""

    profile: HardwareProfile
    params: HEFParameters
    measurements: tuple[Measurement, ...]
    energy_source: str
    created: str
    fxenergy_version: str
    power: tuple[Mapping[str, Any], ...] | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "profile": self.profile.to_dict(), "hef": self.params.to_dict(),
            "measurements": [m.to_dict() for m in self.measurements], "energy_source": self.energy_source,
            "created": self.created, "fxenergy_version": self.fxenergy_version,
            "power": [dict(r) for r in self.power] if self.power is not None else None, "notes": list(self.notes),
        }


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
        guess = _CPU_W_PER_CORE_GUESS * profile.compute_units if not profile.is_gpu else 250.0
        changes["tdp_w"] = guess
        sources["tdp_w"] = (f"guess by fxenergy calibrate: {_CPU_W_PER_CORE_GUESS:g} W per core (no RAPL limit or "
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

    with CpuWatch() as watch:
        launch_s = _measure_launch_s(dev, timer)
        stream_bps, stream_bytes = _measure_stream(dev, profile, timer)
        ms = measure(benches, device, target_s=target_s, repeats=repeats, wait_budget_s=wait_s,
                     cold_bytes=2 * _llc_bytes(profile), progress=progress)
        # DRAM bandwidth drifts with what the neighbours of a shared host do: median of readings before and after
        stream_bps = statistics.median([stream_bps, _measure_stream(dev, profile, timer)[0],
                                        _measure_stream(dev, profile, timer)[0]])
    stream_prof = dataclasses.replace(profile, memory_bandwidth_bytes_per_s=stream_bps) \
        if profile.is_estimated("memory_bandwidth_bytes_per_s") else profile
    peaks = _peaks(ms, stream_prof)
    cal_profile, notes = _calibrated_profile(profile, peaks, launch_s, stream_bps, today)
    units = _UNITS[dev.type]
    laws, stats = fit_families(ms, peaks["flops"]["value"], peaks["bytes"]["value"], units=units)
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
        source = meter.source
    else:
        energy = _profile_energy(ms, cal_profile)
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
        },
        notes=tuple(notes),
    )
    return Calibration(cal_profile, params, tuple(ms), source, now.isoformat(timespec="seconds"), __version__,
                       tuple(power) if power is not None else None, tuple(notes))


# --------------------------------------------------------------------------------------------------
# files


def save_calibration(cal: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``cal`` as one JSON file, atomically (temp file in the same folder, then ``os.replace``)."""
    return write_atomic(path, json.dumps(cal.to_dict(), indent=1, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return dict(x)
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _read_json(path: Path) -> Any:
    return read_json(path, "calibration file")


def load_calibration(path: str | os.PathLike[str]) -> tuple[HardwareProfile, HEFParameters]:
    """The hardware profile and HEF parameter set of a file written by :func:`save_calibration`.

    Refuses, with a one-line :class:`~fxenergy.errors.UserInputError` naming the file and the key, an
    unknown schema, an unknown or missing key, or a profile or parameter set that does not validate.
    """
    path = Path(path).expanduser()
    data = _read_json(path)

    def fail(key: str, problem: str) -> UserInputError:
        return UserInputError(f"calibration file {path}: {key}: {problem}")

    check_document(data, f"calibration file {path}", schema=SCHEMA, allowed=_KEYS,
                   required=("profile", "hef", "energy_source"))
    if data["energy_source"] not in ENERGY_SOURCES:
        raise fail("energy_source", f"{data['energy_source']!r} is not one of {', '.join(ENERGY_SOURCES)}")
    profile = HardwareProfile.from_dict(data["profile"], origin=f"{path} (profile)")
    params = HEFParameters.from_dict(data["hef"], origin=f"{path} (hef)")
    if params.device != profile.name:
        raise fail("hef.device", f"{params.device!r} is not the profile's name {profile.name!r}")
    return profile, params


def is_calibration_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a readable JSON object whose ``schema`` is a calibration's (any version)."""
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("schema", "")).startswith("fxenergy.calibration/")

