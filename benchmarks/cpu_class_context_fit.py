"""Do whole models say some kernel classes are priced low against the rest? Per-class multipliers fitted on pooled
development timings, left one model out (issue 12, session 14; time only).

    uv run python benchmarks/cpu_class_context_fit.py TIMINGS.json:CAL.json [...] --table /tmp/ctx-table.json
    uv run python benchmarks/cpu_class_context_fit.py --table /tmp/ctx-table.json          # fit only, from the table

Each ``TIMINGS:CAL`` pair is a development timing file of ``benchmarks/cpu_latency_dev.py`` (no case of it is a judged
case) and the calibration made before it. The calibration is refitted with the current fitting code
(``cpu_refit.refit``, drift correction on), every case analysed once and predicted with it, and its predicted seconds
summed per kernel class (``NodeDuration.family``); the table is written to ``--table``.

The fit: ``log measured = a_run + log(sum_c k_g(c) x predicted_c)``, one free level ``a_run`` per timing file (each
file is one machine state: the level is drift, not a class effect), one multiplier ``k_g`` per group of memory-bound
or latency-bound classes (:data:`GROUPS`), the compute classes (GEMM, dense / 1x1 / grouped convolutions, bmm) at 1,
a soft-L1 loss and a small ridge on ``log k``. cpu18 found, timing each module inside the model against the same call
alone, batch norm x1.6-1.8, in-place ops x1.3-1.6 and reductions x2.8-3.0 slower in the model; if that survives to
whole models, the multipliers come out above 1 and predicting each model with multipliers fitted without it lowers
its level-removed error. Both are printed: the multipliers on all rows, and the leave-one-model-out errors (each
file's level refitted without the model) with the multipliers free and fixed at 1; then how the shipped model's
level-removed error splits into a persistent part per case and the machine's run-to-run part
(:func:`persistent_and_spread`).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).parent))

GROUPS = {"normalization": "norm", "inplace": "elementwise", "activation": "elementwise", "elementwise": "elementwise",
          "tanh": "elementwise", "reduction": "reduce", "pooling": "reduce", "softmax": "reduce", "embedding": "layout",
          "layout": "layout", "conv_depthwise": "depthwise", "conv_stem": "stem"}
"""Kernel class -> multiplier group; classes not named (matmul, bmm, dense / 1x1 / grouped convolutions) keep 1."""
RIDGE = 0.05


def build_table(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per timed case: its file, measured seconds and predicted seconds per kernel class."""
    import cpu_latency as cl
    from cpu_refit import refit

    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    analyses: dict[tuple, Any] = {}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (timings, cal) in enumerate(pairs):
            refitted = Path(tmp) / f"cal{i}.json"
            refitted.write_text(json.dumps(refit(json.loads(Path(cal).read_text()))))
            setup = resolve(str(refitted), "physical")
            for name, batch, size, measured, *_ in json.loads(Path(timings).read_text()):
                key = (name, batch, size)
                if key not in analyses:
                    built = cl.build(name, batch, size)
                    analyses[key] = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
                by_class: collections.Counter[str] = collections.Counter()
                for d in predict(analyses[key], setup).durations.values():
                    by_class[d.family] += d.duration_s
                rows.append({"run": timings, "calibration": cal, "model": name, "batch": batch, "size": size,
                             "measured_s": measured, "by_class_s": dict(by_class)})
            print(f"{timings} ({cal}): {sum(r['run'] == timings for r in rows)} cases", flush=True)
    return rows


def _design(rows: list[dict[str, Any]], groups: list[str], runs: list[str]) -> tuple[np.ndarray, ...]:
    fixed = np.array([sum(v for c, v in r["by_class_s"].items() if GROUPS.get(c) not in groups) for r in rows])
    grouped = np.array([[sum(v for c, v in r["by_class_s"].items() if GROUPS.get(c) == g) for g in groups] for r in rows])
    measured = np.array([r["measured_s"] for r in rows])
    run = np.array([runs.index(r["run"]) for r in rows])
    return fixed, grouped.reshape(len(rows), len(groups)), measured, run


def fit(rows: list[dict[str, Any]], groups: list[str], runs: list[str], *, free: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(per-run log levels, per-group multipliers)``; multipliers all 1 unless ``free``."""
    fixed, grouped, measured, run = _design(rows, groups, runs)

    def residuals(x: np.ndarray) -> np.ndarray:
        a, log_k = x[:len(runs)], x[len(runs):]
        k = np.exp(log_k) if free else np.ones(len(groups))
        pred = np.exp(a[run]) * (fixed + grouped @ k)
        return np.concatenate([np.log(pred / measured), np.sqrt(RIDGE) * log_k])

    x = least_squares(residuals, np.zeros(len(runs) + len(groups)), loss="soft_l1", f_scale=0.1).x
    return x[:len(runs)], (np.exp(x[len(runs):]) if free else np.ones(len(groups)))


def leave_one_model_out(rows: list[dict[str, Any]], groups: list[str], runs: list[str], *, free: bool) -> np.ndarray:
    """Signed errors (predicted / measured - 1) of every row, its model left out of the fit."""
    errs = np.empty(len(rows))
    for model in sorted({r["model"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["model"] == model]
        train = [r for r in rows if r["model"] != model]
        a, k = fit(train, groups, runs, free=free)
        fixed, grouped, measured, run = _design([rows[i] for i in idx], groups, runs)
        errs[idx] = np.exp(a[run]) * (fixed + grouped @ k) / measured - 1
    return errs


def file_levels(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The shipped model's level per timing file: the median of measured / predicted over its cases."""
    ratios: dict[str, list[float]] = collections.defaultdict(list)
    for r in rows:
        ratios[r["run"]].append(r["measured_s"] / sum(r["by_class_s"].values()))
    return {run: float(np.median(v)) for run, v in sorted(ratios.items())}


def persistent_and_spread(rows: list[dict[str, Any]], min_runs: int = 5) -> dict[str, float]:
    """Split the shipped model's level-removed error (log predicted / measured, each file's median level out) over the
    cases timed in at least ``min_runs`` files into a persistent part (the case's mean over files: the model's own
    error) and the run-to-run part (each file's deviation from that mean: the machine's), with the median APE of each
    alone. The persistent part still holds the noise of its mean (``within / n``)."""
    by_case: dict[tuple, list[float]] = collections.defaultdict(list)
    levels = file_levels(rows)
    for r in rows:
        pred = sum(r["by_class_s"].values())
        by_case[(r["model"], r["batch"], r["size"])].append(float(np.log(pred * levels[r["run"]] / r["measured_s"])))
    cases = [np.array(v) for v in by_case.values() if len(v) >= min_runs]
    means = np.array([v.mean() for v in cases])
    within = np.concatenate([v - v.mean() for v in cases])
    return {"cases": len(cases), "persistent_sd": float(means.std()),
            "run_to_run_sd": float(np.sqrt(np.mean([v.var(ddof=1) for v in cases]))),
            "model_median_ape": float(np.median(np.abs(np.expm1(np.concatenate(cases))))),
            "run_to_run_only_median_ape": float(np.median(np.abs(np.expm1(within)))),
            "persistent_only_median_ape": float(np.median(np.abs(np.expm1(means))))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pairs", nargs="*", help="TIMINGS.json:CALIBRATION.json (the calibration made before the timings)")
    p.add_argument("--table", required=True, help="the per-class table: written from the pairs, or read without them")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.pairs:
        rows = build_table([tuple(x.split(":", 1)) for x in args.pairs])  # type: ignore[misc]
        Path(args.table).write_text(json.dumps(rows))
    else:
        rows = json.loads(Path(args.table).read_text())
    runs = sorted({r["run"] for r in rows})
    groups = sorted(set(GROUPS.values()))
    share = collections.Counter()
    for r in rows:
        total = sum(r["by_class_s"].values())
        for c, v in r["by_class_s"].items():
            share[GROUPS.get(c, "compute (k = 1)")] += v / total / len(rows)
    print(f"{len(rows)} timed cases, {len({r['model'] for r in rows})} models, {len(runs)} timing files; mean share of "
          "predicted time: " + ", ".join(f"{g} {s:.1%}" for g, s in share.most_common()))
    _, k = fit(rows, groups, runs)
    print("multipliers fitted on every row: " + ", ".join(f"{g} x{v:.2f}" for g, v in zip(groups, k)))
    print("\n| leave one model out, each file's level refitted | median | mean | p90 | worst |\n|---|--:|--:|--:|--:|")
    for label, free in (("multipliers fixed at 1 (the shipped model)", False), ("multipliers fitted", True)):
        e = np.abs(leave_one_model_out(rows, groups, runs, free=free))
        print(f"| {label} | {np.median(e):.1%} | {e.mean():.1%} | {np.percentile(e, 90):.1%} | {e.max():.1%} |")
    by_case: dict[tuple, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_case[(r["model"], r["batch"], r["size"])].append(r)
    ratios = [np.median([np.exp(np.mean([np.log(x["measured_s"]) for x in rs])) / sum(x["by_class_s"].values())
                         for x in rs]) for rs in by_case.values()]
    print("\nthe shipped model's level per file (median measured / predicted): "
          + ", ".join(f"{Path(run).name} x{v:.3f}" for run, v in file_levels(rows).items()))
    print(f"per case, the median over files of typical measured (geometric mean over files) / predicted: median "
          f"x{np.median(ratios):.3f} over {len(ratios)} cases, {sum(x > 1 for x in ratios)} above 1")
    d = persistent_and_spread(rows)
    print(f"\nthe shipped model's level-removed error over the {d['cases']} cases timed in >= 5 files (log sd): "
          f"persistent (the case's mean over files) {d['persistent_sd']:.3f}, run to run {d['run_to_run_sd']:.3f}; "
          f"median APE {d['model_median_ape']:.1%} as timed, {d['run_to_run_only_median_ape']:.1%} from the "
          f"run-to-run part alone, {d['persistent_only_median_ape']:.1%} from the persistent part alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
