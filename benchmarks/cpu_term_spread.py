"""Run-to-run stability of the CPU fit's per-byte terms (issue 12, session cpu16): development cases only.

    uv run python benchmarks/cpu_term_spread.py --calibrations A.json B.json ... --timings dev1.json [dev2.json ...]
        [--variants free,anchor1,...]

Each calibration file is refitted (``benchmarks/cpu_refit.py``'s :func:`refit`, drift correction as shipped) under
several rules for the per-byte terms (:data:`fxenergy.calibrate.fitting.PER_BYTE_ANCHOR`, ``PER_BYTE_ANCHOR_BAND``):
``free`` (every term chosen on its grid, the fit before cpu16) and anchored variants (a term put at, or within a band
around, bytes moved / the calibration's measured DRAM copy rate). For each rule it prints the fitted terms of every
calibration, then (a) the spread of the calibrations' predictions of the same development case (max / min - 1;
median and worst over the cases) and (b) per calibration median / mean / worst APE and Spearman against the measured
dev times, with the mean over calibrations. Every case is analysed once. The dev sets must not hold a case of
``benchmarks/cpu_latency.py`` (checked).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
from cpu_refit import refit  # noqa: E402

import fxenergy.calibrate.fitting as fitting  # noqa: E402

# rule -> (anchors: class -> bytes moved per byte of the term, band)
VARIANTS: dict[str, tuple[dict[str, float], float]] = {
    "free": ({}, 1.0),
    "dense1": ({"conv_dense": 1.0}, 1.0),
    "dense2": ({"conv_dense": 2.0}, 1.0),
    "dense3": ({"conv_dense": 3.0}, 1.0),
    "dense2band1.5": ({"conv_dense": 2.0}, 1.5),
    "dense2+pw2": ({"conv_dense": 2.0, "conv_pointwise": 2.0}, 1.0),
    "dense2+pw2+mm2": ({"conv_dense": 2.0, "conv_pointwise": 2.0, "matmul": 2.0}, 1.0),
    "all2band1.5": ({"conv_dense": 2.0, "conv_pointwise": 2.0, "matmul": 2.0}, 1.5),
}


def _terms(perf: dict) -> str:
    ns = {"pack": perf.get("packing_s_per_byte", 0.0) * 1e9,
          **{f"w.{k}": v * 1e9 for k, v in perf.get("weight_s_per_byte", {}).items()},
          **{f"a.{k}": v * 1e9 for k, v in perf.get("act_s_per_byte", {}).items()},
          **{f"o.{k}": v * 1e9 for k, v in perf.get("out_s_per_byte", {}).items()}}
    free = {k: v / 2**20 for k, v in perf.get("act_free_bytes", {}).items()}
    dense = perf["laws"].get("conv_dense", {})
    return (" ".join(f"{k} {v:.3f}" for k, v in ns.items()) + " ns/B; free " +
            " ".join(f"{k} {v:g} MiB" for k, v in free.items()) +
            f"; dense law eta {dense.get('eta_max', 0):.2f} k {dense.get('k', 0):.1f} alpha {dense.get('alpha', 0):.2f}"
            f"; DRAM {perf.get('dram_bytes_per_s', 0) / 1e9:.1f} GB/s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrations", nargs="+", required=True)
    p.add_argument("--timings", nargs="+", required=True)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--save", help="write each rule's predictions (calibrations x cases, s) to SAVE.RULE.npy")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    rows = [r for t in args.timings for r in json.loads(Path(t).read_text())]
    assert not {(r[0], r[1], r[2]) for r in rows} & set(cl.CASES), "a judged case in the development timings"
    meas = np.array([r[3] for r in rows])
    analyses = []
    for name, b, s, *_rest in rows:
        built = cl.build(name, b, s)
        analyses.append(analyse(built.model, built.args, example_kwargs=built.kwargs, name=name))
    docs = [json.loads(Path(c).read_text()) for c in args.calibrations]
    tmp = Path(tempfile.mkdtemp(prefix="cpu_term_spread"))
    print(f"{len(rows)} development cases, {len(docs)} calibrations")
    for variant in args.variants.split(","):
        fitting.PER_BYTE_ANCHOR, fitting.PER_BYTE_ANCHOR_BAND = VARIANTS[variant]
        pred = np.zeros((len(docs), len(rows)))
        print(f"\n== {variant}")
        for i, doc in enumerate(docs):
            out = tmp / f"{variant}.{i}.json"
            new = refit(doc)
            out.write_text(json.dumps(new))
            print(f"  {Path(args.calibrations[i]).name:22s} {_terms(new['cpu_perf'])}")
            st = resolve(str(out), "physical")
            pred[i] = [float(sum(predict(an, st).duration_s.values())) for an in analyses]
        if args.save:
            np.save(f"{args.save}.{variant}.npy", pred)
            np.save(f"{args.save}.measured.npy", meas)
        spread = pred.max(axis=0) / pred.min(axis=0) - 1
        level = np.median(np.log(pred / pred.mean(axis=0)), axis=1)  # each calibration's overall level
        rest = pred / np.exp(level)[:, None]
        rest_spread = rest.max(axis=0) / rest.min(axis=0) - 1
        print(f"  (a) levels {' '.join(f'{x:+.1%}' for x in np.expm1(level))}; spread without them median "
              f"{np.median(rest_spread):.1%} worst {rest_spread.max():.1%}")
        print(f"  (a) spread median {np.median(spread):.1%} worst {spread.max():.1%} "
              f"({rows[int(spread.argmax())][0]} b{rows[int(spread.argmax())][1]}/{rows[int(spread.argmax())][2]})")
        stats = [cl.ape_stats(list(pred[i]), list(meas)) for i in range(len(docs))]
        for i, s in enumerate(stats):
            print(f"  (b) {Path(args.calibrations[i]).name:22s} {s['median_ape']:6.1%} {s['mean_ape']:6.1%} "
                  f"{s['worst_ape']:6.1%} {s['spearman']:.3f}")
        print("  (b) mean over calibrations       " + " ".join(
            f"{np.mean([s[k] for s in stats]):6.1%}" for k in ("median_ape", "mean_ape", "worst_ape")) +
              f" {np.mean([s['spearman'] for s in stats]):.3f}; worst median {max(s['median_ape'] for s in stats):.1%}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
