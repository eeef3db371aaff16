"""Timing microbenchmarks on this machine, and watching for other processes that would disturb it."""

from __future__ import annotations

import dataclasses
import itertools
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

from fxenergy.calibrate.benches import Bench, _Call, _is_index
from fxenergy.errors import UserInputError
from fxenergy.passes.families import work_for
from fxenergy.passes.ops import family_of

__all__ = ["Measurement", "measure", "CpuWatch", "wait_for_quiet", "Progress", "speed_canary", "SpeedTrace",
           "CANARY_EVERY_S", "sustained_canary", "SUSTAINED_CANARY_S", "SUSTAINED_EVERY_S"]

Progress = Callable[[str, int, int], None]

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
    out_bytes: int = 0  # bytes of the call's freshly allocated outputs (page faults above the mmap threshold)
    # when it was timed (s since the calibration's first speed canary, mid-timing) and the machine's speed then,
    # interpolated between the canaries around it (:class:`SpeedTrace`); None in files written before the trace
    t_s: float | None = None
    canary_gflops: float | None = None
    canary_gbs: float | None = None

    def work(self, basis: str) -> float:
        return work_for(basis, flops=self.flops, elementwise_flops=self.elementwise_flops, bytes_moved=self.bytes)

    def to_dict(self) -> dict[str, Any]:
        out = {"family": self.family, "op": self.op, "shape": [list(s) for s in self.shape],
               "params": dict(self.params), "flops": self.flops, "elementwise_flops": self.elementwise_flops,
               "bytes": self.bytes, "median_s": self.median_s, "repeats": self.repeats, "calls": self.calls,
               "spread": self.spread, "input_copies": self.input_copies, "out_bytes": self.out_bytes}
        extra = {"t_s": self.t_s, "canary_gflops": self.canary_gflops, "canary_gbs": self.canary_gbs}
        return out | {k: v for k, v in extra.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        """The inverse of :meth:`to_dict` (files written before the speed trace lack its three keys)."""
        return cls(**{**d, "shape": tuple(tuple(s) for s in d["shape"]), "params": dict(d.get("params", {}))})


# --------------------------------------------------------------------------------------------------
# the machine's speed while it is measured

_CANARY: dict[str, torch.Tensor] = {}
CANARY_EVERY_S = 1.5
"""Seconds between the speed canaries a CPU calibration takes between microbenchmarks (one canary costs ~20-40 ms on
this project's 2-core VM: 1-2% of the calibration's time)."""


def speed_canary() -> dict[str, float]:
    """The machine's speed right now, on two fixed kernels (best of 5 calls each): a 512x512x512 fp32 matmul (GFLOP/s)
    and a 32 MiB copy between preallocated tensors (GB/s, read + write; no page faults once warm). Timed while the
    host gives this machine less (hyperthread siblings busy, clock lowered: invisible to the steal counter), it reads
    lower. The canary's tensors (~65 MiB) are made on the first call and kept for the process's life, so that later
    calls neither allocate nor fault. About 20-40 ms on a 2-core VM. One reading is noisy: on this project's 2-core VM
    5-16% of readings fall near half the typical GFLOP/s for about a second (session cpu15), so judge the machine's
    state by the median of several (:func:`fxenergy.calibrate.fitting.normalise_drift` takes those within 10 s)."""
    _canary_tensors()
    mm = cp = math.inf
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(_CANARY["a"], _CANARY["b"], out=_CANARY["c"])
        mm = min(mm, time.perf_counter() - t)
        t = time.perf_counter()
        _CANARY["dst"].copy_(_CANARY["src"])
        cp = min(cp, time.perf_counter() - t)
    return {"canary_gflops": round(2 * 512**3 / mm / 1e9, 1), "canary_copy_gbs": round(2 * 32 * 2**20 / cp / 1e9, 1)}


def _canary_tensors() -> None:
    """Make the canaries' tensors once per process (see :func:`speed_canary`) and run each kernel once."""
    if not _CANARY:  # normal tensors even when first called in inference mode, so that any later call may write them
        g = torch.Generator().manual_seed(1)
        with torch.inference_mode(False):
            _CANARY.update(a=torch.randn(512, 512, generator=g), b=torch.randn(512, 512, generator=g),
                           c=torch.empty(512, 512), src=torch.randn(8 * 2**20, generator=g), dst=torch.empty(8 * 2**20))
        torch.mm(_CANARY["a"], _CANARY["b"], out=_CANARY["c"])
        _CANARY["dst"].copy_(_CANARY["src"])


SUSTAINED_CANARY_S = 0.6
"""Seconds of back-to-back canary kernels in one :func:`sustained_canary` reading (the default)."""
SUSTAINED_EVERY_S = 15.0
"""Seconds between the sustained canaries (:func:`sustained_canary`) a CPU calibration's :class:`SpeedTrace` takes,
besides one at its start and one at its end: ~7 readings, ~4-5 s, in a quick calibration (session cpu17)."""


def sustained_canary(duration_s: float = SUSTAINED_CANARY_S) -> dict[str, float]:
    """The machine's speed over ``duration_s`` seconds rather than at its fastest moment: the same two kernels as
    :func:`speed_canary` (a 512^3 fp32 matmul and a 32 MiB copy), one after the other, back to back until
    ``duration_s`` has passed; each call's rate is kept. Returns the median and the 10th percentile of the per-call
    matmul GFLOP/s (``sustained_gflops``, ``sustained_gflops_p10``) and copy GB/s (``sustained_gbs``,
    ``sustained_gbs_p10``), the calls timed (``sustained_calls``) and the seconds spent (``sustained_s``).

    A best-of-5 finds one fast call even when the host slows this VM for part of the time; the median over ~0.5 s
    moves with the share of slow calls, and the 10th percentile sees a slow phase that covers a tenth of the window.
    Costs ``duration_s`` (plus one call of each kernel) of both cores."""
    _canary_tensors()
    mm: list[float] = []
    cp: list[float] = []
    t_start = time.perf_counter()
    while not mm or time.perf_counter() - t_start < duration_s:
        t = time.perf_counter()
        torch.mm(_CANARY["a"], _CANARY["b"], out=_CANARY["c"])
        t1 = time.perf_counter()
        _CANARY["dst"].copy_(_CANARY["src"])
        t2 = time.perf_counter()
        mm.append(t1 - t)
        cp.append(t2 - t1)
    gflops = 2 * 512**3 / np.array(mm) / 1e9
    gbs = 2 * 32 * 2**20 / np.array(cp) / 1e9
    return {"sustained_gflops": round(float(np.median(gflops)), 1),
            "sustained_gflops_p10": round(float(np.percentile(gflops, 10)), 1),
            "sustained_gbs": round(float(np.median(gbs)), 2), "sustained_gbs_p10": round(float(np.percentile(gbs, 10)), 2),
            "sustained_calls": len(mm), "sustained_s": round(time.perf_counter() - t_start, 3)}


@dataclass
class SpeedTrace:
    """Speed canaries (:func:`speed_canary`) taken through a calibration: ``points`` are ``{"t_s", "gflops", "gbs"}``,
    ``t_s`` in seconds since the trace began. :meth:`tick` takes one where ``every_s`` has passed since the last;
    :meth:`at` interpolates the speed at a time (held flat beyond the first and last canaries)."""

    every_s: float = CANARY_EVERY_S
    points: list[dict[str, float]] = field(default_factory=list)
    spent_s: float = 0.0  # seconds spent taking canaries
    sustained_every_s: float | None = SUSTAINED_EVERY_S  # None: best-of-5 canaries only
    sustained_s: float = SUSTAINED_CANARY_S

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()
        self._last_sustained_s = -math.inf

    def now_s(self) -> float:
        return time.perf_counter() - self._t0

    def take(self, *, sustained: bool = False) -> dict[str, float]:
        """One canary now; with ``sustained`` (or where ``sustained_every_s`` has passed since the last), a
        :func:`sustained_canary` too, whose median and 10th-percentile GFLOP/s and median GB/s join the point
        (``sustained_gflops``, ``sustained_gflops_p10``, ``sustained_gbs``)."""
        t = time.perf_counter()
        c = speed_canary()
        point = {"t_s": round(t - self._t0, 3), "gflops": c["canary_gflops"], "gbs": c["canary_copy_gbs"]}
        every = self.sustained_every_s
        if sustained or (every is not None and point["t_s"] - self._last_sustained_s >= every):
            s = sustained_canary(self.sustained_s)
            point |= {"sustained_gflops": s["sustained_gflops"], "sustained_gflops_p10": s["sustained_gflops_p10"],
                      "sustained_gbs": s["sustained_gbs"]}
            self._last_sustained_s = point["t_s"]
        self.points.append(point)
        self.spent_s += time.perf_counter() - t
        return point

    def tick(self) -> None:
        if not self.points or self.now_s() - self.points[-1]["t_s"] >= self.every_s:
            self.take()

    def summary(self) -> dict[str, Any]:
        """Canaries taken, their range and median, and the seconds they cost."""
        g, b = [p["gflops"] for p in self.points], [p["gbs"] for p in self.points]
        sg = [p["sustained_gflops"] for p in self.points if "sustained_gflops" in p]
        return {"canaries": len(self.points), "every_s": self.every_s, "spent_s": round(self.spent_s, 2),
                "gflops_min_median_max": [min(g), statistics.median(g), max(g)] if g else None,
                "gbs_min_median_max": [min(b), statistics.median(b), max(b)] if b else None,
                "sustained": len(sg), "sustained_every_s": self.sustained_every_s,
                "sustained_gflops_min_median_max": [min(sg), statistics.median(sg), max(sg)] if sg else None}

    def at(self, t_s: float) -> tuple[float, float]:
        """(GFLOP/s, GB/s) of the canaries interpolated at ``t_s`` (linear in time)."""
        ts = np.array([p["t_s"] for p in self.points])
        return (float(np.interp(t_s, ts, [p["gflops"] for p in self.points])),
                float(np.interp(t_s, ts, [p["gbs"] for p in self.points])))

    def stamp(self, ms: Sequence[Measurement]) -> list[Measurement]:
        """``ms`` with the canary interpolated at each one's ``t_s`` (rows without a time unchanged)."""
        if not self.points:
            return list(ms)
        out = []
        for m in ms:
            if m.t_s is None:
                out.append(m)
                continue
            g, b = self.at(m.t_s)
            out.append(dataclasses.replace(m, canary_gflops=round(g, 2), canary_gbs=round(b, 3)))
        return out


def output_bytes(bench: Bench) -> int:
    """Bytes of the tensors one call of ``bench`` returns (run on meta tensors: nothing computed)."""
    meta = [torch.empty(s[0], dtype=torch.long, device="meta") if _is_index(s) else torch.empty(s, device="meta")
            for s in bench.inputs]
    with torch.inference_mode():
        out = bench.fn(*meta, **bench.kwargs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return sum(o.numel() * o.element_size() for o in outs if isinstance(o, torch.Tensor))


def _work_of(bench: Bench) -> tuple[int, int, int]:
    """(flops, elementwise_flops, bytes) of ``bench`` as :func:`fxenergy.annotate` counts them.

    Refuses a benchmark whose captured nodes do not all fall in its family: the fit would mix families.
    """
    from fxenergy.analysis import analyse  # costs only: the hardware-free layer (api sits above calibrate)

    meta = [torch.empty(s[0], dtype=torch.long, device="meta") if _is_index(s) else torch.empty(s, device="meta")
            for s in bench.inputs]
    rows = [r for r in analyse(_Call(bench.fn, bench.kwargs), tuple(meta)).rows if not r.free]
    fams = {family_of(r.op) for r in rows}
    want = {bench.family} | ({bench.producer} if bench.producer else set())
    if fams != want:
        raise RuntimeError(f"microbenchmark {bench.op} {bench.shapes()} captured as families {sorted(fams)}, "
                           f"not {sorted(want)}")
    if bench.producer:  # the work of the measured op only (the producer's is its own row's)
        rows = [r for r in rows if family_of(r.op) == bench.family]
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
        assert best is not None  # retries >= 0: at least one attempt ran
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
    trace: SpeedTrace | None = None,
) -> list[Measurement]:
    """Time every benchmark on ``device`` and count its work with fxenergy's cost pass.

    Each repeat runs enough back-to-back calls to last about ``target_s`` seconds; the median over
    ``repeats`` of the per-call mean is kept. Uses PyTorch's default thread count. With ``cold_bytes``
    (e.g. twice the last-level cache), consecutive calls cycle through up to 64 copies of the inputs
    spanning that many bytes, so that each call reads its inputs (activations, weights) from memory
    rather than from a cache a previous call warmed, as the layers of a model do. With a ``trace``
    (:class:`SpeedTrace`), a speed canary is taken between benchmarks whenever ``trace.every_s`` has passed, and each
    measurement records when it was timed (``t_s``, on the trace's clock); :meth:`SpeedTrace.stamp` then gives each its
    canary, once the trace is complete.
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
            copies = 1 if b.hot else min(64, max(1, -(-cold_bytes // max(1, b.input_bytes()))))
            first = b.tensors(dev, gen)
            sets = [first] + [[x.clone() for x in first] for _ in range(copies - 1)]  # same values, other memory
            turn = itertools.cycle(sets)
            if trace is not None:
                trace.tick()
                t0_s = trace.now_s()
            t, n, spread = timer(lambda: b.fn(*next(turn), **b.kwargs))  # noqa: B023,F821 - called before the next iteration (and before the del)
            when = None if trace is None else round((t0_s + trace.now_s()) / 2, 3)
            out.append(Measurement(b.family, b.op, tuple(tuple(s) for s in b.shapes()), dict(b.kwargs), flops, ew,
                                   nbytes, t, repeats, n, round(spread, 4), copies, output_bytes(b), t_s=when))
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

