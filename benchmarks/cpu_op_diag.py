"""Per-op diagnosis of the CPU latency model on one (development) case: predicted time per op beside the
time torch.profiler measures for the same aten op in a real forward pass.

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_op_diag.py CAL.json MODEL BATCH SIZE [--runs 5]

Prediction: ``physical`` with the calibration file, summed per captured op name (``Row.op``) with its kernel
class. Measurement: the profiler's CPU time per aten op (total, children included, for the ops the model
calls at top level; see ``--self`` for self times), per forward pass, median-free mean over ``--runs``
passes after two warm-up passes. The profiler adds a few microseconds per op; compare ops with the most
time, not the small ones. Development tool: use it on cases that are NOT cases of cpu_latency.CASES.
"""

from __future__ import annotations

import argparse
import collections
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("calibration")
    p.add_argument("model")
    p.add_argument("batch", type=int)
    p.add_argument("size", type=int)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--self", dest="self_time", action="store_true", help="profiler self times instead of totals")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    built = cl.build(args.model, args.batch, args.size)
    an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=args.model)
    pred = predict(an, resolve(args.calibration, "physical"))
    by_op: dict[str, list] = collections.defaultdict(lambda: [0.0, 0, set(), 0.0, 0])
    for r in an.rows:
        if r.node not in pred.duration_s:
            continue
        e = by_op[r.op]
        e[0] += pred.duration_s[r.node]
        e[1] += 1
        e[2].add(pred.durations[r.node].family if r.node in pred.durations else "?")
        e[3] += r.flops
        e[4] += r.param_bytes_read
    total_pred = sum(pred.duration_s.values())

    model = cl.real_model(built, args.model, args.size)
    xs, kw = cl.real_inputs(built, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for _ in range(2):
            model(*xs, **kw)
        t_plain = min(cl.measure_latency(model, xs, kw, 3, 1.0)[0] for _ in range(1))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.runs):
                model(*xs, **kw)
    meas: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.defaultdict(int)
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::"):
            continue
        t = (ev.self_cpu_time_total if args.self_time else ev.cpu_time_total) / 1e6 / args.runs
        meas[ev.key[6:]] += t
        calls[ev.key[6:]] += ev.count // args.runs
    print(f"{args.model} b{args.batch} {args.size}: plain run {t_plain * 1e3:.2f} ms, predicted {total_pred * 1e3:.2f} ms "
          f"({total_pred / t_plain - 1:+.1%})")
    print(f"{'op':<34} {'class':<22} {'n':>4} {'pred ms':>9} {'meas ms':>9} {'calls':>5} {'ratio':>6} {'GFLOP':>7} {'W MB':>7}")
    for op, (t, n, fam, fl, wb) in sorted(by_op.items(), key=lambda kv: -kv[1][0]):
        m = meas.get(op, meas.get(op.rstrip("_"), 0.0))
        ratio = f"{t / m:.2f}" if m else ""
        print(f"{op:<34} {','.join(sorted(fam)):<22} {n:>4} {t * 1e3:9.3f} {m * 1e3:9.3f} {calls.get(op, 0):>5} {ratio:>6} "
              f"{fl / 1e9:7.3f} {wb / 1e6:7.2f}")
    print("measured aten ops (top 25):")
    for op, m in sorted(meas.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {op:<40} {m * 1e3:9.3f} ms  {calls[op]:>5} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
