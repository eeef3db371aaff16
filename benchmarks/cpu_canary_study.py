"""Does a whole-model CPU time follow the speed canary, and which one: best-of-5 or sustained? (issue 12, cpu17)

    uv run python benchmarks/cpu_canary_study.py --out /tmp/cpu17-study.jsonl [--holds 6 --rounds 3 --gap-s 120]
    uv run python benchmarks/cpu_canary_study.py --analyse /tmp/cpu17-study.jsonl [more.jsonl ...]

A fixed set of six cases (a GEMM-heavy transformer, two vision transformers/ConvNeXt, a ResNet, a mobile network and
SqueezeNet at batch 16) is timed round after round, the models built once. Each timing (the benchmark's
:func:`cpu_latency.measure_latency`: two untimed passes, the median of up to 5) is bracketed by both canaries, before
and after: the best-of-5 :func:`~fxenergy.calibrate.timing.speed_canary` and the
:func:`~fxenergy.calibrate.timing.sustained_canary` (back-to-back kernels for ~0.6 s; median and 10th percentile).
The machine lock is taken for ``--rounds`` rounds at a time (about a minute) and released for ``--gap-s`` seconds,
so that the holds sample the host at different times and the other users of the machine can run. Every timing is
appended to ``--out`` as one JSON line, so an interrupted study keeps what it took.

``--analyse`` regresses, over all timings, ``log(case time / that case's median time)`` on
``log(canary / that canary's median)`` for each canary reading (the geometric mean of the readings before and after
the timing): a slope of -1 means whole-model time scales as 1 / canary; R^2 says how much of the time's spread the
canary explains. Per case too. Measurement only: nothing here is fitted into a file or a model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import linregress

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

from fxenergy.calibrate import CpuWatch  # noqa: E402
from fxenergy.calibrate.timing import speed_canary, sustained_canary  # noqa: E402

STUDY_CASES: tuple[tuple[str, int, int], ...] = (
    ("gpt2", 1, 128), ("vit_b_16", 1, 224), ("convnext_tiny", 1, 224), ("resnet50", 1, 224),
    ("mobilenet_v3_large", 16, 160), ("squeezenet1_1", 16, 160),
)
"""Fixed before any timing: the case kinds whose session-10 -> session-11 slowdown the brief names, plus a batch-16
mobile network and a batch-16 SqueezeNet (memory-heavier)."""

READINGS = ("canary_gflops", "canary_copy_gbs", "sustained_gflops", "sustained_gflops_p10", "sustained_gbs",
            "sustained_gbs_p10")


def both_canaries(duration_s: float) -> dict[str, float]:
    return speed_canary() | sustained_canary(duration_s)


def study(out: Path, holds: int, rounds: int, gap_s: float, duration_s: float, lock: str | None) -> None:
    gen = torch.Generator().manual_seed(0)
    models = []
    for name, batch, size in STUDY_CASES:
        built = cl.build(name, batch, size)
        models.append((name, batch, size, cl.real_model(built, name, size), *cl.real_inputs(built, gen)))
    for hold in range(holds):
        if hold:
            time.sleep(gap_s)
        with cl.machine_lock(lock):
            t_hold = time.perf_counter()
            for r in range(rounds):
                k = (hold * rounds + r) % len(models)
                for name, batch, size, model, args, kwargs in models[k:] + models[:k]:  # rotate the order per round
                    before = both_canaries(duration_s)
                    with CpuWatch() as watch:
                        t_s, n, ctr = cl.measure_latency(model, args, kwargs, 5, 1.0)
                    after = both_canaries(duration_s)
                    row = {"utc": time.strftime("%H:%M:%S", time.gmtime()), "hold": hold, "round": r, "case": name,
                           "batch": batch, "size": size, "time_s": t_s, "passes": n, "other_share": watch.share,
                           **ctr.as_dict(), "before": before, "after": after}
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{row['utc']} h{hold} r{r} {name:<20} b{batch:<2} {t_s * 1e3:8.1f} ms  best-of-5 "
                          f"{before['canary_gflops']:.0f}/{after['canary_gflops']:.0f}  sustained median "
                          f"{before['sustained_gflops']:.0f}/{after['sustained_gflops']:.0f} p10 "
                          f"{before['sustained_gflops_p10']:.0f}/{after['sustained_gflops_p10']:.0f} GFLOP/s, "
                          f"others {watch.share or 0:.0%}", flush=True)
            print(f"hold {hold}: lock held {time.perf_counter() - t_hold:.0f} s", flush=True)


def analyse(paths: list[Path], max_other: float) -> None:
    rows = []
    for k, path in enumerate(paths):  # holds numbered per file: (file, hold)
        rows += [json.loads(line) | {"file": k} for line in path.read_text().splitlines() if line.strip()]
    n_all = len(rows)
    rows = [r for r in rows if (r["other_share"] or 0.0) <= max_other]
    cases = sorted({r["case"] for r in rows})
    holds = sorted({(r["file"], r["hold"]) for r in rows})
    print(f"{len(rows)} timings of {n_all} kept (other processes <= {max_other:.0%} of the CPUs), {len(holds)} holds, "
          + ", ".join(f"{min(r['utc'] for r in rows if r['file'] == k)}-{max(r['utc'] for r in rows if r['file'] == k)}"
                      for k in range(len(paths))) + " UTC")
    y = np.empty(len(rows))
    for c in cases:  # each case's time against its own median
        idx = [i for i, r in enumerate(rows) if r["case"] == c]
        t = np.array([rows[i]["time_s"] for i in idx])
        y[idx] = np.log(t / np.median(t))
        print(f"  {c:<20} n={len(idx):3d}  median {np.median(t) * 1e3:7.1f} ms  p90/p10 "
              f"{np.percentile(t, 90) / np.percentile(t, 10):.2f}")
    cost = np.array([r["before"]["sustained_s"] for r in rows])
    print(f"sustained canary: {np.median([r['before']['sustained_calls'] for r in rows]):.0f} calls of each kernel in "
          f"{np.median(cost):.2f} s (median)")
    print("\n| canary reading (geo. mean of before and after) | range (p10-p90) | slope, all | R^2, all | "
          "slope, before only | R^2 | " + " | ".join(f"slope / R^2 {c}" for c in cases) + " |")
    print("|---|--:|--:|--:|--:|--:|" + "--:|" * len(cases))
    for key in READINGS:
        v = np.sqrt(np.array([r["before"][key] for r in rows]) * np.array([r["after"][key] for r in rows]))
        vb = np.array([r["before"][key] for r in rows])
        x, xb = np.log(v / np.median(v)), np.log(vb / np.median(vb))
        fit, fitb = linregress(x, y), linregress(xb, y)
        cells = []
        for c in cases:
            idx = [i for i, r in enumerate(rows) if r["case"] == c]
            f = linregress(x[idx], y[idx])
            cells.append(f"{f.slope:+.2f} / {f.rvalue ** 2:.2f}")
        print(f"| {key} | {np.percentile(v, 10):.1f}-{np.percentile(v, 90):.1f} | {fit.slope:+.2f} | "
              f"{fit.rvalue ** 2:.2f} | {fitb.slope:+.2f} | {fitb.rvalue ** 2:.2f} | " + " | ".join(cells) + " |")
    # the level of a hold (a minute under the lock): median case time / median canary over the hold's timings
    print("\nper hold (median over its timings), slope / R^2 of the hold's time level on its canary level:")
    for key in READINGS[:4]:
        v = np.sqrt(np.array([r["before"][key] for r in rows]) * np.array([r["after"][key] for r in rows]))
        x = np.log(v / np.median(v))
        members = [[i for i, r in enumerate(rows) if (r["file"], r["hold"]) == h] for h in holds]
        hy, hx = [float(np.median(y[m])) for m in members], [float(np.median(x[m])) for m in members]
        f = linregress(hx, hy)
        print(f"  {key:<22} {f.slope:+.2f} / {f.rvalue ** 2:.2f}; hold time levels x{math.exp(min(hy)):.2f}-"
              f"x{math.exp(max(hy)):.2f}, canary levels x{math.exp(min(hx)):.2f}-x{math.exp(max(hx)):.2f}")
    # what the re-time rule would see: timings whose canary read under 80% of its median, and how slow they were
    print("\nshare of timings flagged (reading < 80% of its median) and their case time / case median (median):")
    for key in READINGS:
        v = np.array([r["before"][key] for r in rows])
        flag = v < 0.8 * np.median(v)
        slow = np.exp(y) > 1.15
        print(f"  {key:<22} flagged {flag.mean():5.1%}; case time x{np.exp(np.median(y[flag])) if flag.any() else math.nan:.2f}"
              f" when flagged, x{np.exp(np.median(y[~flag])):.2f} otherwise; of the {slow.sum()} timings > 1.15x their "
              f"median, {(flag & slow).sum()} flagged")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="append each timing here as one JSON line")
    p.add_argument("--holds", type=int, default=6, help="lock holds")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the six cases per hold")
    p.add_argument("--gap-s", type=float, default=120.0, help="seconds between holds, lock released")
    p.add_argument("--duration", type=float, default=0.6, help="seconds of one sustained canary reading")
    p.add_argument("--no-lock", action="store_true")
    p.add_argument("--analyse", type=Path, nargs="+", help="analyse studies' JSON lines instead of timing")
    p.add_argument("--max-other", type=float, default=0.05, help="drop timings with other processes above this share")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if a.analyse:
        analyse(a.analyse, a.max_other)
        return 0
    if not a.out:
        p.error("--out or --analyse")
    study(a.out, a.holds, a.rounds, a.gap_s, a.duration, None if a.no_lock else cl.LOCK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
