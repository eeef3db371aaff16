"""Do the calibration's own microbenchmarks show the whole models' context effect when run in sequence?
(issue 12, session cpu18; time only)

    uv run python benchmarks/cpu_context_benches.py [--sweeps 3] [--full] [--calibration CAL.json]

``benchmarks/cpu_context_ab.py`` found that a model's leaf modules, replayed once each in the model's order (``S``),
take what they take inside the model, and 1.1-1.8x what they take called 3 times back to back (``B``), the way
``fxenergy calibrate`` times its microbenchmarks. This script takes the quick calibration's benchmarks
(:func:`fxenergy.calibrate.benches.benchmarks`), one input set each, and times every call both ways, under the
machine lock: ``B`` = median of 3 back-to-back calls, ``S`` = each benchmark called once per sweep, in the list's
order, median over ``--sweeps`` sweeps. It prints S/B per family and per benchmark label (sums over the
benchmarks), and the median per-benchmark ratio; with ``--calibration`` (a quick calibration's file, made on this
machine) also S / the calibration's own time of the same benchmark (``median_s``: back-to-back calls over rotated
input copies). Nothing is fitted.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_context_ab as ab  # noqa: E402
import cpu_latency as cl  # noqa: E402

from fxenergy.calibrate.benches import benchmarks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweeps", type=int, default=3)
    p.add_argument("--full", action="store_true", help="the full calibration's benchmarks, not --quick's")
    p.add_argument("--calibration", help="a calibration file of the same benchmarks: also S / its median_s")
    p.add_argument("--write-sequence", metavar="NEW.json",
                   help="with --calibration: write a copy of it whose measurements' median_s are the S times "
                        "(for benchmarks/cpu_refit.py: the same rows fitted on once-in-sequence times)")
    p.add_argument("--write-hot", metavar="NEW.json",
                   help="with --calibration: the same with the B times (back to back, same moment and inputs as S)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    gen = torch.Generator().manual_seed(0)
    benches = benchmarks("cpu", quick=not args.full)
    with torch.inference_mode():
        sets = [b.tensors("cpu", gen) for b in benches]
        # (label, callable, args, kwargs): the recorded calls of cpu_context_ab, timed by its own loops
        calls = [(b.op, b.fn, xs, b.kwargs) for b, xs in zip(benches, sets)]
        with cl.machine_lock(cl.LOCK), cl.CpuWatch() as watch:
            t_start = time.perf_counter()
            hot = ab.time_replay(calls, None)
            seq = ab.time_sequence(calls, args.sweeps)
            held_s = time.perf_counter() - t_start
    print(f"{len(benches)} benchmarks, lock held {held_s:.1f} s, other processes {watch.share or 0:.0%} of the CPUs")
    for out, times, what in ((args.write_sequence, seq, "once-in-sequence"), (args.write_hot, hot, "back-to-back")):
        if not (args.calibration and out):
            continue
        doc = json.loads(Path(args.calibration).read_text())
        t_of = {(b.family, b.op, json.dumps(b.shapes()), json.dumps(dict(b.kwargs), sort_keys=True)): t
                for b, t in zip(benches, times)}
        for m in doc["measurements"]:
            m["median_s"] = t_of[(m["family"], m["op"], json.dumps(m["shape"]), json.dumps(m["params"], sort_keys=True))]
        doc["notes"] = [*doc.get("notes", []), f"measurements' median_s replaced by {what} times "
                        "(benchmarks/cpu_context_benches.py): a development file, not a calibration"]
        Path(out).write_text(json.dumps(doc))
    cal = [float("nan")] * len(benches)
    if args.calibration:
        rows = {(m["family"], m["op"], json.dumps(m["shape"]), json.dumps(m["params"], sort_keys=True)): m["median_s"]
                for m in json.loads(Path(args.calibration).read_text())["measurements"]}
        cal = [rows.get((b.family, b.op, json.dumps(b.shapes()), json.dumps(dict(b.kwargs), sort_keys=True)),
                        float("nan")) for b in benches]
        print(f"{sum(c == c for c in cal)} of {len(benches)} benchmarks found in {args.calibration}")
    for key, label in ((lambda b: b.family, "family"), (lambda b: f"{b.family}: {b.op}", "benchmark label")):
        acc: dict[str, list[list[float]]] = collections.defaultdict(lambda: [[], [], []])
        for b, h, s, c in zip(benches, hot, seq, cal):
            for i, v in enumerate((h, s, c)):
                acc[key(b)][i].append(v)
        print(f"\n| {label} | n | B ms (sum) | S/B (sums) | S/B median per benchmark | S/cal (sums) | S/cal median |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        for k, (h, s, c) in sorted(acc.items(), key=lambda kv: -sum(kv[1][1]) / sum(kv[1][0])):
            pairs = [(x, z) for x, z in zip(s, c) if z == z]
            vs_cal = (f"{sum(x for x, _ in pairs) / sum(z for _, z in pairs):.2f} | "
                      f"{statistics.median(x / z for x, z in pairs):.2f}") if pairs else "- | -"
            print(f"| {k} | {len(h)} | {sum(h) * 1e3:.1f} | {sum(s) / sum(h):.2f} | "
                  f"{statistics.median(x / y for x, y in zip(s, h)):.2f} | {vs_cal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
