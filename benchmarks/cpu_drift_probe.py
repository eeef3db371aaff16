"""Does a microbenchmark's time follow the speed canary, and which canary (matmul or copy)? (issue 12, session cpu15)

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_drift_probe.py --seconds 150 --json /tmp/probe.json
    uv run python benchmarks/cpu_drift_probe.py --analyse /tmp/probe.json [/tmp/probe2.json ...]

Times the same dozen calibration microbenchmarks (one per kernel class: dense, 1x1, depthwise and grouped convolutions,
a batched linear, a GEMV, attention bmm, DRAM- and cache-sized element-wise ops, a dispatch-bound tiny add,
normalisations, a gather) round after round for ``--seconds``, timed as ``fxenergy calibrate --quick`` times them
(:func:`fxenergy.calibrate.timing.measure`, cold inputs), with the calibration's speed trace taken between them. The
analysis regresses, per benchmark, ``log(time)`` on ``log(canary)`` (matmul GFLOP/s, copy GB/s, and both): a slope of
-1 means the time scales as 1 / canary, 0 that it ignores the canary. The slopes say which canary applies to which rows
of a calibration (``fxenergy.calibrate.fitting.DRIFT_CANARY``). Measurement only: nothing here is fitted into a file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fxenergy.calibrate.benches import benchmarks
from fxenergy.calibrate.fitting import measurement_class
from fxenergy.calibrate.timing import SpeedTrace, measure


def probe_benches() -> list:
    """One or two quick-calibration benchmarks per kernel class, picked by shape (fixed: the first match)."""
    want = [("conv2d dense k3", 16), ("conv2d pointwise k1", 16), ("conv2d depthwise k3", 16),
            ("conv2d grouped k3", 4), ("conv2d dense k7", 4)]
    out, all_ = [], benchmarks("cpu", quick=True)
    for op, b in want:
        out.append(next(x for x in all_ if x.op == op and x.inputs[0][0] == b))
    pick = {("linear", (512, 3072)), ("linear", (1, 3072)), ("bmm", (48, 128, 64)), ("add", (2**22,)), ("relu", (2**16,)),
            ("add", (2**10,)), ("layer_norm", (1365, 768)), ("gelu", (2**22,)), ("embedding", (1365,))}
    for x in all_:
        key = (x.op, tuple(x.shapes()[0]))
        if key in pick:
            pick.discard(key)
            out.append(x)
    return out


def run(seconds: float, path: Path) -> None:
    benches = probe_benches()
    trace = SpeedTrace(every_s=0.0)  # a canary before every benchmark: the probe wants the finest trace
    rows = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        ms = measure(benches, "cpu", target_s=0.004, repeats=5, cold_bytes=2 * 32 * 2**20, trace=trace)
        rows += [m for m in ms]
    trace.take()
    rows = trace.stamp(rows)
    path.write_text(json.dumps({"points": trace.points, "rows": [m.to_dict() | {"cls": measurement_class(m)}
                                                                 for m in rows]}))
    g = [p["gflops"] for p in trace.points]
    print(f"{len(rows)} timings, {len(trace.points)} canaries, GFLOP/s {min(g):.0f}-{max(g):.0f} "
          f"(median {statistics.median(g):.0f}); wrote {path}")


def analyse(paths: list[Path]) -> None:
    rows = [r for p in paths for r in json.loads(p.read_text())["rows"]]
    keys = sorted({(r["op"], str(r["shape"][0])) for r in rows})
    print("| benchmark | class | n | time spread (p90/p10) | slope on matmul canary | slope on copy canary | "
          "both: matmul, copy | R2 matmul / copy / both |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for op, shape in keys:
        rs = [r for r in rows if r["op"] == op and str(r["shape"][0]) == shape]
        y = np.log([r["median_s"] for r in rs])
        xg = np.log([r["canary_gflops"] for r in rs])
        xb = np.log([r["canary_gbs"] for r in rs])
        fits = []
        for cols in ([xg], [xb], [xg, xb]):
            a = np.column_stack([*cols, np.ones_like(y)])
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            resid = y - a @ coef
            fits.append((coef, 1 - resid.var() / max(y.var(), 1e-30)))
        spread = float(np.exp(np.percentile(y, 90) - np.percentile(y, 10)))
        print(f"| {op} {shape} | {rs[0]['cls']} | {len(rs)} | {spread:.2f} | {fits[0][0][0]:+.2f} | "
              f"{fits[1][0][0]:+.2f} | {fits[2][0][0]:+.2f}, {fits[2][0][1]:+.2f} | "
              f"{fits[0][1]:.2f} / {fits[1][1]:.2f} / {fits[2][1]:.2f} |")
    g = np.array([r["canary_gflops"] for r in rows])
    b = np.array([r["canary_gbs"] for r in rows])
    print(f"canaries over the timings: matmul {g.min():.0f}-{g.max():.0f} GFLOP/s, copy {b.min():.1f}-{b.max():.1f} GB/s, "
          f"correlation of their logs {np.corrcoef(np.log(g), np.log(b))[0, 1]:+.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--json", default="/tmp/fxenergy-drift-probe.json")
    p.add_argument("--analyse", nargs="+", help="analyse probe files instead of timing")
    args = p.parse_args(argv)
    if args.analyse:
        analyse([Path(x) for x in args.analyse])
    else:
        run(args.seconds, Path(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
