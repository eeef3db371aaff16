"""Why stems, reductions and 1x1 convolutions run slower in whole networks than their calibration rows say (session
cpu12): each op at the shapes development networks run it with, timed three ways on this machine.

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_stem_reduce_micro.py

* ``cal``: as ``fxenergy calibrate`` times it (:func:`fxenergy.calibrate.timing.measure`: calls cycle through copies of
  the inputs spanning twice the last-level cache; the output is freed and reallocated between calls, so the
  allocator hands back the same, cache-warm buffer);
* ``evicted``: the same inputs, and before every call a 64 MiB buffer (twice the L3 here) is written, untimed: input,
  weights and the output's memory all come from DRAM, as in a network where the op's buffers were last touched a
  whole pass ago;
* ``hot``: the same inputs, back to back (everything cache-resident).

Per call medians (ms) over 30 calls; NCHW and channels-last inputs for the convolutions. Stems are 3-channel 3x3/7x7
stride-2 convolutions; reductions are ``mean`` over H, W (what ``adaptive_avg_pool2d(1)`` lowers to).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from fxenergy.calibrate.benches import Bench
from fxenergy.calibrate.timing import measure

CALLS = 30
FLUSH = torch.empty(16 * 2**20)  # 64 MiB


def _per_call(fn, flush: bool) -> tuple[float, float]:
    ts, faults = [], 0
    for _ in range(CALLS + 3):
        if flush:
            FLUSH.fill_(1.0)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return statistics.median(ts[3:]), faults * 4096 / 2**20 / len(ts)


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def row(label: str, bench: Bench, extra: str = "") -> None:
    cal = measure([bench], cold_bytes=64 * 2**20, repeats=5)[0].median_s
    xs = bench.tensors("cpu", torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ev, fev = _per_call(lambda: bench.fn(*xs, **bench.kwargs), True)
        hot, _ = _per_call(lambda: bench.fn(*xs, **bench.kwargs), False)
    print(f"{label:<44} cal {cal * 1e3:7.3f}  evicted {ev * 1e3:7.3f}  hot {hot * 1e3:7.3f}  "
          f"evicted/cal {ev / cal:5.2f}  faults {fev:4.1f} MiB/call  {extra}", flush=True)


def conv(b: int, cin: int, cout: int, side: int, k: int, s: int, groups: int = 1) -> Bench:
    return Bench("convolution", f"conv k{k}", F.conv2d, ((b, cin, side, side), (cout, cin // groups, k, k), (cout,)),
                 {"stride": s, "padding": k // 2, "groups": groups})


def main() -> int:
    torch.set_grad_enabled(False)
    # glibc's dynamic thresholds at their maximum (mmap 32 MiB, trim 64 MiB), as in a calibration or a process that
    # ran other models (fxenergy.perf.cpu.ALLOCATOR_STATE): a freed mmapped chunk just under 32 MiB raises them
    big = torch.ones(31 * 2**18)
    del big
    print(f"threads {torch.get_num_threads()}")
    print("# stems (network shapes, and the calibration's)")
    for b, cout, side, k in ((16, 16, 128, 3), (16, 32, 128, 3), (8, 32, 192, 3), (4, 32, 192, 3), (8, 16, 192, 3),
                             (1, 32, 224, 3), (4, 32, 224, 3), (16, 32, 224, 3), (4, 64, 160, 7), (1, 64, 224, 7)):
        be = conv(b, 3, cout, side, k, 2)
        out_mib = b * cout * (side // 2) ** 2 * 4 / 2**20
        row(f"stem b{b} 3->{cout} {side}px k{k}s2", be, f"out {out_mib:.1f} MiB")
    print("# 1x1 convolutions")
    for b, cin, cout, side in ((16, 16, 64, 64), (16, 96, 24, 32), (8, 144, 24, 48), (16, 960, 160, 4), (4, 64, 256, 56),
                               (8, 40, 240, 24)):
        be = conv(b, cin, cout, side, 1, 1)
        row(f"1x1 b{b} {cin}->{cout} {side}px", be, f"out {b * cout * side * side * 4 / 2**20:.1f} MiB")
    print("# reductions: mean over H, W")
    for b, c, side in ((16, 1280, 4, ), (16, 960, 4), (8, 1280, 6), (4, 1280, 6), (16, 72, 32), (16, 120, 16),
                       (4, 1280, 7), (4, 512, 5), (16, 1280, 2), (1, 1280, 7)):
        be = Bench("reduction", "mean", _mean, ((b, c, side, side),))
        row(f"mean b{b} {c}x{side}x{side}", be, f"rows {b * c}, {side * side} each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
