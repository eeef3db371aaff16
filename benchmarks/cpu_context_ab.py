"""Is an op slower inside a whole model than alone, at the same moment? (issue 12, session cpu18; time only)

    uv run python benchmarks/cpu_context_ab.py CAL.json --out /tmp/ctx.jsonl [--cycles 8] [MODEL:BATCH:SIDE ...]
    uv run python benchmarks/cpu_context_ab.py CAL.json --analyse /tmp/ctx.jsonl

For each DEVELOPMENT case (never a case of cpu_latency.CASES) one pass with forward pre-hooks records every leaf
module call's inputs (cloned), then ``--cycles`` cycles, each timing in a rotating order, seconds apart, in one
process:

- ``A``: the whole forward, no hooks (median of 3 after one untimed pass);
- ``H``: the whole forward with timing hooks on the leaf modules (median of 3 passes, per call): each module's time
  inside the model (``H_cov``: their sum, the part of the model the replays cover);
- ``B``: every recorded call replayed alone with its recorded inputs, hot: called 3 times back to back, median;
  summed over the calls;
- ``C``: the same replay with the caches evicted before each timed call (a buffer of ``EVICT_BYTES``, twice this
  VM's 32 MiB L3, rewritten first), median of 3.

The calibration's microbenchmarks (fxenergy.calibrate.timing.measure) sit between B and C: many calls back to back
(instruction caches, oneDNN primitives and the weights' TLB entries warm, as in B) but each call reading its inputs
from a rotation of copies spanning 2x the L3 (as in C). The physical prediction with CAL is given for the whole
model and for the covered modules (summed over the fx nodes of each module: its ``call_module`` nodes, or the traced calls that read its parameters),
and ``pred_cov`` ratios are taken over the calls of the modules that have fx nodes (``matched``). Each case's cycles run under one hold
of the machine lock; one JSON line per cycle. ``--analyse`` prints per case the medians over cycles (and the
p10-p90 spread) of A/B, A/C, H_cov/B, H_cov/C, pred/A, pred_cov/B, pred_cov/H_cov, and per kernel class H/B, H/C and
pred/B over all cases.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
from _timing import median_time  # noqa: E402

from fxenergy.analysis import analyse, predict  # noqa: E402
from fxenergy.calibrate.timing import speed_canary  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402

CASES: tuple[tuple[str, int, int], ...] = (
    ("resnet152", 4, 96), ("densenet169", 2, 160), ("mobilenet_v3_large", 1, 224), ("resnet101", 1, 224),
    ("shufflenet_v2_x0_5", 16, 160), ("regnet_x_400mf", 1, 224), ("vit_b_32", 4, 224), ("gpt2", 1, 64),
)
"""Fixed before any timing: eight of cpu_latency_dev.DEV's default development cases (dense, deep, depthwise,
grouped, channel-shuffle, transformer)."""
assert not set(CASES) & set(cl.CASES)
EVICT_BYTES = 64 << 20
"""Bytes rewritten before each cold call: twice the 32 MiB L3 (shared with other tenants) of this VM."""
EVICT_L2_BYTES = 4 << 20
"""Bytes rewritten before each call of the ``L`` replay: twice the two cores' 1 MiB L2s, a sixteenth of the L3, so
that the call's inputs and weights come from the L3 (where they were not evicted from it by others)."""
PARTS = ("A", "H", "B", "C")
"""The parts of a cycle by default; ``--more`` adds ``L`` (replay after evicting the L2s only) and ``S`` (every
recorded call timed once, in the model's order, 3 sweeps, per call the median: the model's sequence without its
data flow, each call's inputs being its own recorded copy)."""
REPEATS = 3


def _clone(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def leaves(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(qn, m) for qn, m in model.named_modules() if qn and not list(m.children())]


def record_calls(model: torch.nn.Module, xs: tuple, kw: dict) -> list[tuple[str, torch.nn.Module, Any, Any]]:
    """Every leaf module call of one forward, in order: (name, module, cloned args, cloned kwargs)."""
    calls: list[tuple[str, torch.nn.Module, Any, Any]] = []
    handles = [m.register_forward_pre_hook(
        lambda m, a, k, qn=qn: calls.append((qn, m, _clone(a), _clone(k))), with_kwargs=True)
        for qn, m in leaves(model)]
    with torch.no_grad():
        model(*xs, **kw)
    for h in handles:
        h.remove()
    return calls


def time_whole(model: torch.nn.Module, xs: tuple, kw: dict) -> float:
    return median_time(lambda: model(*xs, **kw), REPEATS)


def time_hooked(model: torch.nn.Module, xs: tuple, kw: dict) -> tuple[float, list[float]]:
    """(median whole-pass seconds, per leaf call the median seconds inside the model) with timing hooks on."""
    spans: list[float] = []
    start = [0.0]
    hs = []
    for _qn, m in leaves(model):
        hs.append(m.register_forward_pre_hook(lambda *_: start.__setitem__(0, time.perf_counter())))
        hs.append(m.register_forward_hook(lambda *_: spans.append(time.perf_counter() - start[0])))
    model(*xs, **kw)
    whole, per = [], []
    for _ in range(REPEATS):
        spans.clear()
        t = time.perf_counter()
        model(*xs, **kw)
        whole.append(time.perf_counter() - t)
        per.append(list(spans))
    for h in hs:
        h.remove()
    return statistics.median(whole), [statistics.median(v) for v in zip(*per)]


def time_replay(calls: list, evict: torch.Tensor | None) -> list[float]:
    """Per recorded call, the median of 3 calls alone (hot), or each after rewriting ``evict`` (cold)."""
    out = []
    for _qn, m, a, k in calls:
        ts = []
        for _ in range(REPEATS):
            if evict is not None:
                evict.add_(1.0)
            t = time.perf_counter()
            m(*a, **k)
            ts.append(time.perf_counter() - t)
        out.append(statistics.median(ts))
    return out


def time_sequence(calls: list, sweeps_n: int = REPEATS) -> list[float]:
    """Per recorded call, the median over ``sweeps_n`` sweeps of its time when the calls run once each, in the
    model's order."""
    sweeps = []
    for _ in range(sweeps_n):
        ts = []
        for _qn, m, a, k in calls:
            t = time.perf_counter()
            m(*a, **k)
            ts.append(time.perf_counter() - t)
        sweeps.append(ts)
    return [statistics.median(v) for v in zip(*sweeps)]


def run_case(name: str, batch: int, side: int, cal: str, cycles: int, gen: torch.Generator, fh: Any,
             parts: tuple[str, ...] = PARTS) -> None:
    built = cl.build(name, batch, side)
    an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
    pred = predict(an, resolve(cal, "physical"))
    nodes_of: dict[str, list[str]] = collections.defaultdict(list)
    mods = dict(built.model.named_modules())
    owners_of: dict[str, list[str]] = collections.defaultdict(list)  # parameter name -> every module holding it
    by_id = collections.defaultdict(list)
    for pn, prm in built.model.named_parameters(remove_duplicate=False):
        by_id[id(prm)].append(pn.rsplit(".", 1)[0])
    for pn, prm in built.model.named_parameters(remove_duplicate=False):
        owners_of[pn] = by_id[id(prm)]
    for n in an.graph_module.graph.nodes:
        if n.op == "call_module":
            nodes_of[str(n.target)].append(n.name)
        elif n.op == "call_function":  # traced through (transformers): the module whose parameter it reads
            owners = {o for a in n.all_input_nodes if a.op == "get_attr" for o in owners_of.get(str(a.target), ())}
            if len(owners) > 1:  # a tied weight (GPT-2's wte and lm_head): the embedding reads it by gathering
                gather = "embedding" in str(n.target)
                owners = {o for o in owners if isinstance(mods[o], torch.nn.Embedding) == gather}
            if len(owners) == 1:
                nodes_of[owners.pop()].append(n.name)
    model = cl.real_model(built, name, side)
    xs, kw = cl.real_inputs(built, gen)
    evict, evict_l2 = torch.zeros(EVICT_BYTES // 4), torch.zeros(EVICT_L2_BYTES // 4)
    with torch.no_grad():
        calls = record_calls(model, xs, kw)
        names = [c[0] for c in calls]
        # per module: predicted seconds over all its fx nodes, and its kernel class (of its first node)
        pred_of = {qn: sum(pred.duration_s.get(n, 0.0) for n in ns) for qn, ns in nodes_of.items()}
        fam_of = {qn: pred.durations[ns[0]].family if ns[0] in pred.durations else "?" for qn, ns in nodes_of.items()}
        pred_cov = sum(pred_of.get(qn, 0.0) for qn in set(names))  # over the modules with fx nodes only
        matched = sum(1 for qn in set(names) if qn in pred_of)
        with cl.machine_lock(cl.LOCK):
            for k in range(cycles):
                order = list(parts[k % len(parts):] + parts[:k % len(parts)])
                row: dict[str, Any] = {"model": name, "batch": batch, "side": side, "cycle": k, "order": order,
                                       "t_unix": time.time()} | speed_canary()
                with cl.CpuWatch() as watch:
                    for part in order:
                        flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                        if part == "A":
                            row["A_s"] = time_whole(model, xs, kw)
                        elif part == "H":
                            row["H_s"], row["H_calls_s"] = time_hooked(model, xs, kw)
                        elif part == "S":
                            row["S_calls_s"] = time_sequence(calls)
                        else:
                            row[f"{part}_calls_s"] = time_replay(calls, {"C": evict, "L": evict_l2}.get(part))
                        # minor page faults (MiB) over the part: 4 passes for A and H, 3 calls per module for B and C
                        row[f"{part}_fault_mib"] = ((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0)
                                                    * cl.PAGE_BYTES / 2**20)
                row["others_share"] = watch.share
                row |= {"calls": names, "families": [fam_of.get(qn, "?") for qn in names],
                        "pred_s": float(sum(pred.duration_s.values())), "pred_cov_s": pred_cov,
                        "pred_calls_s": [pred_of.get(qn, 0.0) / max(1, names.count(qn)) for qn in names],
                        "matched": [qn in pred_of for qn in names],
                        "modules_matched": matched, "modules": len(set(names))}
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(f"  {name} b{batch}/{side} cycle {k}: A {row['A_s'] * 1e3:.1f} H {row['H_s'] * 1e3:.1f} "
                      f"Hcov {sum(row['H_calls_s']) * 1e3:.1f} B {sum(row['B_calls_s']) * 1e3:.1f} "
                      f"C {sum(row['C_calls_s']) * 1e3:.1f} pred {row['pred_s'] * 1e3:.1f} "
                      f"others {watch.share or 0:.0%}", flush=True)


def _q(v: list[float]) -> str:
    return f"{np.median(v):.2f} ({np.percentile(v, 10):.2f}-{np.percentile(v, 90):.2f})"


MAX_OTHERS_SHARE = 0.05
"""Cycles during which other processes used more of the CPUs than this are left out of the summary (as
cpu_latency.py re-times a case whose share is over 5%)."""


def analyse_rows(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    kept = [r for r in rows if (r["others_share"] or 0.0) <= MAX_OTHERS_SHARE]
    print(f"{len(kept)} of {len(rows)} cycles kept (others <= {MAX_OTHERS_SHARE:.0%} of the CPUs)")
    rows = kept
    by: dict[tuple, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by[(r["model"], r["batch"], r["side"])].append(r)
    print("| case | cycles | A ms | pred ms | between ms: A-Hcov / pred | cover | matched | A/B | A/C | Hcov/B | Hcov/C | pred/A | pred_cov/B | pred_cov/C | pred_cov/Hcov |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    cols: list[list[float]] = []
    fam: dict[str, list[list[float]]] = collections.defaultdict(lambda: [[], [], [], []])
    for (m, b, s), rs in by.items():
        A = [r["A_s"] for r in rs]
        H = [r["H_s"] for r in rs]
        Hc = [sum(r["H_calls_s"]) for r in rs]
        B = [sum(r["B_calls_s"]) for r in rs]
        C = [sum(r["C_calls_s"]) for r in rs]
        p, pc = rs[0]["pred_s"], rs[0]["pred_cov_s"]
        Bm, Cm, Hm = ([sum(v for v, ok in zip(r[key], r["matched"]) if ok) for r in rs]
                      for key in ("B_calls_s", "C_calls_s", "H_calls_s"))
        cover = statistics.median(h / w for h, w in zip(Hc, H))
        ratio = lambda x, y: [u / v for u, v in zip(x, y)]  # noqa: E731
        match = statistics.median(x / y for x, y in zip(Hm, Hc))
        between = statistics.median(a - h for a, h in zip(A, Hc))  # functional ops and Python between leaf modules
        cols.append([statistics.median(v) for v in (ratio(A, B), ratio(A, C), ratio(Hc, B), ratio(Hc, C),
                                                   [p / a for a in A], [pc / x for x in Bm], [pc / x for x in Cm],
                                                   [pc / x for x in Hm])])
        print(f"| {m} b{b}/{s} | {len(rs)} | {statistics.median(A) * 1e3:.1f} | {p * 1e3:.1f} | "
              f"{between * 1e3:.1f} / {(p - pc) * 1e3:.1f} | "
              f"{cover:.0%} | {match:.0%} | {_q(ratio(A, B))} | "
              f"{_q(ratio(A, C))} | {_q(ratio(Hc, B))} | {_q(ratio(Hc, C))} | {_q([p / a for a in A])} | "
              f"{_q([pc / x for x in Bm])} | {_q([pc / x for x in Cm])} | {_q([pc / x for x in Hm])} |")
        for r in rs:
            acc: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
            for f, h, bb, cc, pp, ok in zip(r["families"], r["H_calls_s"], r["B_calls_s"], r["C_calls_s"],
                                            r["pred_calls_s"], r["matched"]):
                f = f if ok else "(no fx node)"
                a = acc[f]
                a[0] += h
                a[1] += bb
                a[2] += cc
                a[3] += pp
            for f, (h, bb, cc, pp) in acc.items():
                for i, v in enumerate((h, bb, cc, pp)):
                    fam[f][i].append(v)
    if cols:
        meds = " | ".join(f"{statistics.median(c):.2f}" for c in zip(*cols))
        print(f"| median over cases | | | | | | | {meds} |")
    print("\nWhere A - pred goes (ms, medians over cycles; share of A): between = (A - Hcov) - (pred - pred_cov), "
          "context = Hcov - B, isolated = B - pred_cov over the modules with fx nodes, unmatched = B of the others")
    print("| case | A ms | A - pred | between | context | isolated | unmatched |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for (m, b, s), rs in by.items():
        def med(f: Any, rs: list[dict] = rs) -> float:
            return statistics.median(f(r) for r in rs)
        a, p, pc = med(lambda r: r["A_s"]), rs[0]["pred_s"], rs[0]["pred_cov_s"]
        parts = (a - p, med(lambda r: r["A_s"] - sum(r["H_calls_s"])) - (p - pc),
                 med(lambda r: sum(r["H_calls_s"]) - sum(r["B_calls_s"])),
                 med(lambda r: sum(v for v, ok in zip(r["B_calls_s"], r["matched"]) if ok)) - pc,
                 med(lambda r: sum(v for v, ok in zip(r["B_calls_s"], r["matched"]) if not ok)))
        print(f"| {m} b{b}/{s} | {a * 1e3:.1f} | " + " | ".join(f"{x * 1e3:+.1f} ({x / a:+.0%})" for x in parts) + " |")
    more = [r for r in rows if "L_calls_s" in r and "S_calls_s" in r]
    if more:
        print("\nWith the L (L2s evicted) and S (model order, once each) replays: medians over cycles (p10-p90)")
        print("| case | cycles | Hcov/B | Hcov/L | Hcov/S | Hcov/C | pred_cov/L | pred_cov/S |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
        mby: dict[tuple, list[dict]] = collections.defaultdict(list)
        for r in more:
            mby[(r["model"], r["batch"], r["side"])].append(r)
        for (m, b, s), rs in mby.items():
            sums = {k: [sum(v for v, ok in zip(r[f"{k}_calls_s"], r["matched"]) if ok) for r in rs] for k in "HBLSC"}
            pc = rs[0]["pred_cov_s"]
            print(f"| {m} b{b}/{s} | {len(rs)} | " + " | ".join(
                _q([h / x for h, x in zip(sums["H"], sums[k])]) for k in "BLSC") + " | " +
                " | ".join(_q([pc / x for x in sums[k]]) for k in "LS") + " |")
        cls: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * 5)
        for r in more:
            for i, (f, ok) in enumerate(zip(r["families"], r["matched"])):
                for j, k in enumerate("HBLSC"):
                    cls[f if ok else "(no fx node)"][j] += r[f"{k}_calls_s"][i]
        print("\n| class | H ms (sum) | H/B | H/L | H/S | H/C |")
        print("|---|--:|--:|--:|--:|--:|")
        for f, (h, bb, ll, ss, cc) in sorted(cls.items(), key=lambda kv: -kv[1][0]):
            print(f"| {f} | {h * 1e3:.0f} | {h / bb:.2f} | {h / ll:.2f} | {h / ss:.2f} | {h / cc:.2f} |")
    print("\nPer kernel class, all cases and cycles pooled (sums; ratios of the sums):")
    print("| class | H ms (sum over cycles) | H/B | H/C | pred/B | pred/H |")
    print("|---|--:|--:|--:|--:|--:|")
    for f, (h, bb, cc, pp) in sorted(fam.items(), key=lambda kv: -sum(kv[1][0])):
        sh, sb, sc, sp = sum(h), sum(bb), sum(cc), sum(pp)
        print(f"| {f} | {sh * 1e3:.0f} | {sh / sb:.2f} | {sh / sc:.2f} | {sp / sb:.2f} | {sp / sh:.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("calibration")
    p.add_argument("cases", nargs="*", help="MODEL:BATCH:SIDE (default: CASES)")
    p.add_argument("--out", default="/tmp/fxenergy-cpu_context_ab.jsonl")
    p.add_argument("--cycles", type=int, default=8)
    p.add_argument("--more", action="store_true", help="add the L and S parts to each cycle")
    p.add_argument("--analyse", nargs="*", help="JSONL files to summarise (nothing is timed)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.analyse:
        analyse_rows(args.analyse)
        return 0
    cases = [(n, int(b), int(s)) for n, b, s in (c.split(":") for c in args.cases)] or list(CASES)
    assert not set(cases) & set(cl.CASES), "a benchmark case: use development cases only"
    gen = torch.Generator().manual_seed(0)
    with open(args.out, "a") as fh:
        for name, b, s in cases:
            run_case(name, b, s, args.calibration, args.cycles, gen, fh, PARTS + ("L", "S") if args.more else PARTS)
    analyse_rows([args.out])
    return 0


if __name__ == "__main__":
    sys.exit(main())
