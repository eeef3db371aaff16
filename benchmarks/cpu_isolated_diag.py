"""What over-prices a model's ops in isolation? Predicted vs isolated (B) time per kernel class and shape regime
(issue 12, session cpu20; time only; nothing is timed here).

    uv run python benchmarks/cpu_isolated_diag.py CAL.json CTX.jsonl [CTX.jsonl ...] [--case MODEL:BATCH:SIDE ...]
        [--top 12]

Reads the cycles ``benchmarks/cpu_context_ab.py`` wrote (per leaf module call of a development case: its time replayed
alone, hot, ``B``; its time inside the model, ``H``; cycles with other load over 5% left out, per call the median over
cycles) and prices the same calls with ``CAL`` (physical backend, the calibration's fitted curves), split into what the
duration model adds up per fx node (:meth:`fxenergy.perf.cpu.CpuDurationModel.node_duration`), each found by turning one
part off and taking the difference:

- ``dispatch``: the calibration's per-op cost (``dispatch_s``) x launches;
- ``fault``: page faults of fresh outputs, a convolution's blocked copies and heap churn;
- ``wfloor``: what the weight-streaming floor adds above the class law (a compute node is never faster than its weights
  stream at the rate of the calibration's batch-1 linears, cold weights);
- ``law``: the rest (the class's law and per-byte terms).

It prints, per kernel class and per shape regime (convolutions by kind, output side and channels), the sums over the
cases' calls of B, H, pred and its parts, and the calls whose prediction exceeds B the most.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

from fxenergy.analysis import analyse  # noqa: E402
from fxenergy.perf.cpu import _with_dispatch  # noqa: E402
from fxenergy.records import COST, TRACE, get_record  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402

MAX_OTHERS_SHARE = 0.05
"""Cycles with other processes over this share of the CPUs are left out (as cpu_context_ab.py's summary does)."""
PARTS = ("law", "wfloor", "fault", "dispatch")


def _side(n: int) -> str:
    return "<=7" if n <= 7 else "8-14" if n <= 14 else "15-28" if n <= 28 else "29-56" if n <= 56 else ">56"


def regime(trace: Any, cls: str, mod: torch.nn.Module) -> str:
    """A shape regime: the kernel class, and for convolutions the output side and the channel count."""
    if isinstance(mod, torch.nn.Conv2d):
        out = trace.outputs[0].shape if trace.outputs else ()
        side = int(out[-1]) if len(out) == 4 else 0
        ch = "C<=64" if mod.out_channels <= 64 else "C<=256" if mod.out_channels <= 256 else "C>256"
        return f"{cls} k{mod.kernel_size[0]} side {_side(side)} {ch}"
    if isinstance(mod, (torch.nn.AdaptiveAvgPool2d,)):
        return f"{cls} adaptive_avg_pool"
    return f"{cls} {type(mod).__name__}"


def node_parts(model: Any, trace: Any, cost: Any, launches: int) -> dict[str, float]:
    """The node's predicted seconds split into :data:`PARTS` (each part: full minus the prediction without it)."""
    full = model.node_duration(trace, cost, launches)[0]
    spec, params, wbps, heap = model.spec, model.params, model._weight_bps, model.heap_share
    try:
        model.spec = _with_dispatch(spec, 0.0)
        no_dispatch = model.node_duration(trace, cost, launches)[0]
        model.spec = spec
        model.params, model.heap_share = dataclasses.replace(params, fault_s_per_byte=0.0), 0.0
        no_fault = model.node_duration(trace, cost, launches)[0]
        model.params, model.heap_share = dataclasses.replace(params, weight_law=None), heap
        model._weight_bps = 0.0
        no_floor = model.node_duration(trace, cost, launches)[0]
    finally:
        model.spec, model.params, model._weight_bps, model.heap_share = spec, params, wbps, heap
    parts = {"dispatch": full - no_dispatch, "fault": full - no_fault, "wfloor": full - no_floor}
    parts["law"] = full - sum(parts.values())
    return parts


def case_rows(cal: str, rows: list[dict]) -> list[dict[str, Any]]:
    """Per leaf call of one case: module, class, regime, median B and H over the kept cycles, predicted parts."""
    from fxenergy.passes.durations import _launches

    name, batch, side = rows[0]["model"], rows[0]["batch"], rows[0]["side"]
    built = cl.build(name, batch, side)
    an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
    setup = resolve(cal, "physical")
    model = setup.cpu_model
    gm = an.graph_module
    from fxenergy.perf.cpu import heap_fault_share, kernel_class

    model.heap_share = heap_fault_share(get_record(n, TRACE) for n in gm.graph.nodes)
    mods = dict(built.model.named_modules())
    by_mod: dict[str, list[tuple[Any, Any]]] = collections.defaultdict(list)
    for n in gm.graph.nodes:
        if n.op == "call_module":
            tr, co = get_record(n, TRACE), get_record(n, COST)
            if tr is not None and co is not None and not co.free:
                by_mod[str(n.target)].append((tr, co))
    calls = rows[0]["calls"]
    count = collections.Counter(calls)
    out = []
    for i, qn in enumerate(calls):
        if qn not in by_mod:
            continue
        parts = {k: 0.0 for k in PARTS}
        cls = "?"
        for tr, co in by_mod[qn]:
            for k, v in node_parts(model, tr, co, _launches(tr)).items():
                parts[k] += v / count[qn]
            cls = kernel_class(tr, co)
        b = statistics.median(r["B_calls_s"][i] for r in rows)
        h = statistics.median(r["H_calls_s"][i] for r in rows)
        out.append({"case": f"{name} b{batch}/{side}", "module": qn, "class": cls,
                    "regime": regime(by_mod[qn][0][0], cls, mods[qn]), "B": b, "H": h,
                    "pred": sum(parts.values()), **parts})
    return out


def table(title: str, key: str, data: list[dict[str, Any]]) -> None:
    agg: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for d in data:
        a = agg[d[key]]
        a["n"] += 1
        for k in ("B", "H", "pred", *PARTS):
            a[k] += d[k]
    tot_b = sum(d["B"] for d in data)
    print(f"\n{title}")
    print("| " + key + " | calls | B ms | H ms | pred ms | pred/B | pred-B ms (share of all B) | law | wfloor | fault | dispatch |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for k, a in sorted(agg.items(), key=lambda kv: -(kv[1]["pred"] - kv[1]["B"])):
        print(f"| {k} | {a['n']:.0f} | {a['B'] * 1e3:.2f} | {a['H'] * 1e3:.2f} | {a['pred'] * 1e3:.2f} | "
              f"{a['pred'] / a['B']:.2f} | {(a['pred'] - a['B']) * 1e3:+.2f} ({(a['pred'] - a['B']) / tot_b:+.0%}) | "
              + " | ".join(f"{a[p] * 1e3:.2f}" for p in PARTS) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("calibration")
    p.add_argument("jsonl", nargs="+")
    p.add_argument("--case", nargs="*", default=None, help="MODEL:BATCH:SIDE to keep (default: all in the files)")
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--json", help="write the per-call rows here")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = [json.loads(line) for f in args.jsonl for line in Path(f).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if (r["others_share"] or 0.0) <= MAX_OTHERS_SHARE]
    by: dict[tuple, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by[(r["model"], r["batch"], r["side"])].append(r)
    keep = {tuple(int(x) if i else x for i, x in enumerate(c.split(":"))) for c in args.case} if args.case else None
    data: list[dict[str, Any]] = []
    for key, rs in by.items():
        if keep is not None and key not in keep:
            continue
        d = case_rows(args.calibration, rs)
        b, pr = sum(x["B"] for x in d), sum(x["pred"] for x in d)
        print(f"{key[0]} b{key[1]}/{key[2]}: {len(rs)} cycles, {len(d)} matched calls, B {b * 1e3:.2f} ms, "
              f"pred {pr * 1e3:.2f} ms, pred/B {pr / b:.2f}; parts (ms) " +
              ", ".join(f"{k} {sum(x[k] for x in d) * 1e3:.2f}" for k in PARTS))
        data += d
    table("Per kernel class (all cases' calls; sums)", "class", data)
    table("Per shape regime", "regime", data)
    print(f"\nThe {args.top} calls priced most above B:")
    print("| case | module | regime | B us | H us | pred us | " + " | ".join(PARTS) + " |")
    print("|---|---|---|--:|--:|--:|" + "--:|" * len(PARTS))
    for d in sorted(data, key=lambda d: -(d["pred"] - d["B"]))[:args.top]:
        print(f"| {d['case']} | {d['module']} | {d['regime']} | {d['B'] * 1e6:.0f} | {d['H'] * 1e6:.0f} | "
              f"{d['pred'] * 1e6:.0f} | " + " | ".join(f"{d[k] * 1e6:.0f}" for k in PARTS) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
