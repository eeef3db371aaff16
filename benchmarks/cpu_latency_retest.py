"""How well can ANY predictor do on the judged CPU latency benchmark on this machine? A test-retest floor (issue 12).

    uv run python benchmarks/cpu_latency_retest.py RUN.json RUN.json RUN.json [...]

Takes the JSON files of several judged runs of ``benchmarks/cpu_latency.py`` (``--json``; the same cases each time;
or the timings files of several runs of one ``benchmarks/cpu_latency_dev.py`` set)
and, for each run, predicts its measured times by an *oracle* that knows the same cases' measured times from all the
other runs (their geometric mean per case): no model, the cases themselves timed again on the same machine. Its
errors, with the judged statistics (median / mean / worst APE, Spearman) and with the run's level removed (every
prediction scaled by the median measured / predicted, as ``level_removed_stats``), are the floor this machine puts
under any prediction of that run: what is left is the machine's run-to-run spread, not a model's error. Beside it,
the physical model's own figures from the run's file (the code of its day). Measured times do not depend on
fxenergy's code, only on torch and the machine, so runs of different sessions can be pooled. Reads files, runs
nothing; nothing is fitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cpu_latency import ape_stats, level_removed_stats  # noqa: E402

Key = tuple[str, int, "int | None"]


def measured_by_case(data: Any) -> dict[Key, float]:
    """``(model, batch, size) -> measured seconds`` of one judged run's file (its JSON), or of a development timings
    file (``benchmarks/cpu_latency_dev.py --timings``: a list of ``[model, batch, size, seconds, ...]``)."""
    if isinstance(data, list):
        return {(r[0], r[1], r[2]): float(r[3]) for r in data}
    return {(c["model"], c["batch"], c["size"]): float(c["measured_s"]) for c in data["cases"]}


def _model_cell(data: Any) -> str:
    """The run's own physical (calibrated) figures, where the file (its JSON) is a judged run's."""
    if isinstance(data, list):
        return "- (development timings) | -"
    m = data["summary"]["physical"]
    lr = level_removed_stats([c["physical_s"] for c in data["cases"]], [c["measured_s"] for c in data["cases"]])
    return (f"{m['median_ape']:.1%} / {m['mean_ape']:.1%} / {m['worst_ape']:.1%}, {m['spearman']:.3f} | "
            f"{lr['median_ape']:.1%} / {lr['worst_ape']:.1%} (x{lr['level']:.3f})")


def oracle_floor(runs: dict[str, dict[Key, float]]) -> list[dict[str, float | str]]:
    """Per run: the judged and level-removed statistics of the oracle (the geometric mean of the other runs' measured
    times of the same case) against this run's measurements, over the cases every run has. Needs >= 2 runs."""
    if len(runs) < 2:
        raise ValueError("the test-retest floor needs at least two runs of the same cases")
    keys = sorted(set.intersection(*(set(r) for r in runs.values())), key=repr)
    if len(keys) < 3:
        raise ValueError(f"the runs share {len(keys)} cases; they must time the same cases")
    logs = {name: np.log([r[k] for k in keys]) for name, r in runs.items()}
    out: list[dict[str, float | str]] = []
    for name in runs:
        oracle = np.exp(np.mean([v for n, v in logs.items() if n != name], axis=0))
        meas = np.exp(logs[name])
        s, lr = ape_stats(list(oracle), list(meas)), level_removed_stats(list(oracle), list(meas))
        out.append({"run": name, "cases": len(keys), **s,
                    **{f"level_removed_{k}": v for k, v in lr.items()}})
    return out


def below_typical(runs: dict[str, dict[Key, float]], docs: dict[str, Any],
                  floor: list[dict[str, float | str]]) -> dict[str, Any] | None:
    """Where every run is a judged run's file (with its predictions): per run, the model's level over the oracle's,
    i.e. about the median of (the other runs' typical time / this run's prediction): the calibration's level against
    how long the cases take on this machine, the run's own drift divided out; and per case the median
    over runs of typical / predicted, where typical is the geometric mean of the case's measured times over all runs.
    ``floor``: :func:`oracle_floor` of ``runs``. None for development timings (no predictions)."""
    if any(isinstance(d, list) for d in docs.values()):
        return None
    keys = sorted(set.intersection(*(set(r) for r in runs.values())), key=repr)
    typical = {k: float(np.exp(np.mean([np.log(r[k]) for r in runs.values()]))) for k in keys}
    pred = {name: {(c["model"], c["batch"], c["size"]): float(c["physical_s"]) for c in d["cases"]}
            for name, d in docs.items()}
    oracle_level = {str(r["run"]): float(r["level_removed_level"]) for r in floor}
    per_run = [level_removed_stats([pred[n][k] for k in keys], [runs[n][k] for k in keys])["level"] / oracle_level[n]
               for n in runs]
    ratios = [float(np.median([typical[k] / pred[n][k] for n in runs])) for k in keys]
    return {"per_run": per_run, "cases": len(keys), "below": sum(x > 1 for x in ratios),
            "median_ratio": float(np.median(ratios))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path,
                   help="judged run files (benchmarks/cpu_latency.py --json) or development timings of one set")
    args = p.parse_args(argv)
    docs = {str(f): json.loads(f.read_text()) for f in args.runs}
    runs = {name: measured_by_case(d) for name, d in docs.items()}
    rows = oracle_floor(runs)
    print(f"oracle = geometric mean of the other {len(runs) - 1} runs' measured times of the same {rows[0]['cases']} "
          "cases; model = the run's own physical (calibrated) figures\n")
    print("| run | oracle: median / mean / worst APE, Spearman | oracle, level removed: median / worst (level) "
          "| model: median / mean / worst, Spearman | model, level removed: median / worst (level) |")
    print("|---|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {Path(str(r['run'])).name} | {r['median_ape']:.1%} / {r['mean_ape']:.1%} / {r['worst_ape']:.1%}, "
              f"{r['spearman']:.3f} | {r['level_removed_median_ape']:.1%} / {r['level_removed_worst_ape']:.1%} "
              f"(x{r['level_removed_level']:.3f}) | {_model_cell(docs[str(r['run'])])} |")
    typical = below_typical(runs, docs, rows)
    if typical:
        print("\nthe calibrations' level against the cases' typical time (model level / oracle level per run): "
              + ", ".join(f"x{v:.2f}" for v in typical["per_run"])
              + f"; {typical['below']} of {typical['cases']} cases predicted below their typical time by the median "
              f"of the runs (median typical / predicted x{typical['median_ratio']:.3f})")
    med = [float(r["median_ape"]) for r in rows]
    worst = [float(r["worst_ape"]) for r in rows]
    print(f"\noracle meets median <= 10% in {sum(m <= 0.10 for m in med)} of {len(rows)} runs, worst <= 30% in "
          f"{sum(w <= 0.30 for w in worst)} of {len(rows)}, both in "
          f"{sum(m <= 0.10 and w <= 0.30 for m, w in zip(med, worst))} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
