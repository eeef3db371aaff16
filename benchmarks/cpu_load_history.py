"""Do whole models run slower after minutes of load than on a rested machine? (issue 12, session 14; time only)

    flock-free: it takes the machine lock itself while it times.
    uv run python benchmarks/cpu_load_history.py --label rested --seconds 45 --json /tmp/load.jsonl
    uv run python benchmarks/cpu_load_history.py --analyse /tmp/load.jsonl [--calibration CAL.json]

The judged CPU benchmark calibrates and then times its cases straight away, for about five minutes of load; its
predictions came out below the cases' typical time in every one of seven runs (x1.10-1.24 after each run's drift
against the other runs is divided out, ``cpu_latency_retest.py``), while development cases timed long after their
calibration came out at x1.00-1.05, and three timed straight after a calibration or a judged run at x1.09-1.17. If the
host gives a VM less after minutes of load than after rest, that is the pattern, and a calibration taken from rest is
the wrong reference for a model run under load. This script times a fixed set of development models (none a judged
case) round after round for ``--seconds``, each a median of 3 forwards after a warm-up, with the speed canary each
round, and appends one JSON line per timing under ``--label``. Run it rested, straight after ``fxenergy calibrate
--quick`` for minutes, and rested again; ``--analyse`` prints, per label and per minute, the median over models of
(time / the model's median time in the first label), and with ``--calibration`` the median measured / predicted.
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
import cpu_latency as cl  # noqa: E402

from fxenergy.calibrate.timing import speed_canary  # noqa: E402

CASES: tuple[tuple[str, int, int], ...] = (
    ("resnet34", 8, 128), ("mobilenet_v3_large", 1, 224), ("mnasnet0_5", 4, 224), ("vit_b_32", 4, 224),
    ("regnet_x_400mf", 8, 160), ("densenet169", 2, 160), ("shufflenet_v2_x0_5", 16, 160), ("gpt2", 1, 64),
)
"""Fixed before any timing: eight of ``cpu_latency_dev.DEV``'s cases (dense, depthwise, transformer, grouped,
concatenating, channel-shuffle, decoder), about 0.7 s a round on this VM."""
assert not set(CASES) & set(cl.CASES)


def probe(label: str, seconds: float, out: Path) -> int:
    """Time :data:`CASES` round after round for ``seconds`` under the machine lock; one JSON line per timing."""
    gen = torch.Generator().manual_seed(0)
    ready = []
    for name, batch, size in CASES:
        built = cl.build(name, batch, size)
        ready.append((name, batch, size, cl.real_model(built, name, size), *cl.real_inputs(built, gen)))
    n = 0
    with cl.machine_lock(cl.LOCK), out.open("a") as fh:
        end = time.time() + seconds
        while time.time() < end:
            canary = speed_canary()
            for name, batch, size, model, args, kwargs in ready:
                measured, _, _ = cl.measure_latency(model, args, kwargs, 3, 0.0)
                fh.write(json.dumps({"label": label, "t_unix": time.time(), "model": name, "batch": batch,
                                     "size": size, "seconds": measured, **canary}) + "\n")
                n += 1
            fh.flush()
    return n


def analyse(path: Path, calibration: str | None) -> None:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    first = collections.defaultdict(list)
    for r in rows:
        if r["label"] == labels[0]:
            first[r["model"]].append(r["seconds"])
    ref = {m: statistics.median(v) for m, v in first.items()}
    pred: dict[str, float] = {}
    if calibration:
        from fxenergy.analysis import analyse as an
        from fxenergy.analysis import predict
        from fxenergy.resolve import resolve

        setup = resolve(calibration, "physical")
        for name, batch, size in CASES:
            built = cl.build(name, batch, size)
            pred[name] = float(sum(predict(an(built.model, built.args, example_kwargs=built.kwargs, name=name),
                                           setup).duration_s.values()))
    t0 = rows[0]["t_unix"]
    print(f"| label | minute | timings | time / {labels[0]} (median over models) | measured / predicted | canary GFLOP/s |")
    print("|---|--:|--:|--:|--:|--:|")
    for label in labels:
        rs = [r for r in rows if r["label"] == label]
        by_minute = collections.defaultdict(list)
        for r in rs:
            by_minute[int((r["t_unix"] - rs[0]["t_unix"]) // 60)].append(r)
        for minute, ms in sorted(by_minute.items()):
            rel = statistics.median(r["seconds"] / ref[r["model"]] for r in ms)
            lvl = f"{statistics.median(r['seconds'] / pred[r['model']] for r in ms):.3f}" if pred else "-"
            print(f"| {label} (from {(rs[0]['t_unix'] - t0) / 60:.1f} min) | {minute} | {len(ms)} | {rel:.3f} | "
                  f"{lvl} | {statistics.median(r['canary_gflops'] for r in ms):.0f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label")
    p.add_argument("--seconds", type=float, default=45.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--analyse", type=Path)
    p.add_argument("--calibration")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.analyse:
        analyse(args.analyse, args.calibration)
        return 0
    if not (args.label and args.json):
        p.error("timing needs --label and --json (or give --analyse FILE)")
    print(f"{args.label}: {probe(args.label, args.seconds, args.json)} timings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
