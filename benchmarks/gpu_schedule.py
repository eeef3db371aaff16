"""Whole-model GPU time under each way of putting calls together (``fxenergy.perf.model.SCHEDULES``), with and
without a setting's own dispatch floors: the 18 A30 training-step rows of gpu-operators-nicolai (nothing runs on a
GPU; docs/validation.md, gpu11).

    uv run python benchmarks/gpu_schedule.py [--floors FILE] [--quick] [--inference]
    uv run python benchmarks/gpu_schedule.py --transformers [MODEL]   # learned/roofline per GPU per schedule
    uv run python benchmarks/gpu_schedule.py --speed                  # annotate time, max vs loop (time only)

``--floors FILE``: a learned-gpu JSON whose ``dispatch_floors`` are used for the "setting floors" columns
(``scripts/fit_gpu_perf.py --setting-floors -o FILE``); without it only the shipped file's floors are run.
Each model is analysed once (training step, SGD, batch 32) and predicted under every variant. The energy column uses
the training-power uplift chosen leave-one-model-out (as benchmarks/gpu_models.py does) for each variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_models import UPLIFTS, a30_model_rows  # noqa: E402

from fxenergy.models import build_model  # noqa: E402


def _predict(analysis, pp, schedule: str) -> tuple[float, list[float]]:  # noqa: ANN001
    """(duration s, energy J per training-power uplift of UPLIFTS) of a training analysis on the A30: the
    durations are annotated once, the power re-priced per uplift (the learned backend's own node_energy_j)."""
    from fxenergy.analysis import GraphView
    from fxenergy.hardware import load_profile
    from fxenergy.perf.model import LearnedGPUModel
    from fxenergy.records import COST, DURATION, TRACE, get_record

    view = GraphView(analysis.graph_module)
    model = LearnedGPUModel(load_profile("a30"), pp, schedule=schedule)
    model.annotate(view)
    rows = [(get_record(n, COST), get_record(n, TRACE), get_record(n, DURATION), n.name) for n in view.graph.nodes
            if get_record(n, DURATION) is not None]
    energies = []
    for u in UPLIFTS:
        model.params = replace(pp, training_power={"backward": float(u), "optimizer": float(u)})
        energies.append(sum(model.node_energy_j(c, tr, d, name) for c, tr, d, name in rows))
    return sum(d.duration_s for _c, _t, d, _n in rows), energies


def _total_s(analysis, device: str, pp, schedule: str) -> float:  # noqa: ANN001
    from fxenergy.analysis import GraphView
    from fxenergy.hardware import load_profile
    from fxenergy.perf.model import LearnedGPUModel
    from fxenergy.records import DURATION, get_record

    view = GraphView(analysis.graph_module)
    LearnedGPUModel(load_profile(device), pp, schedule=schedule).annotate(view)
    return sum(d.duration_s for n in view.graph.nodes if (d := get_record(n, DURATION)) is not None)


def inference_shift(variants: dict, quick: bool) -> None:  # noqa: ANN001
    """The 18 models' forward passes (batch 32) on the A30 and the RTX 2080 Ti: each schedule's total over "max"'s
    (no measurement of these in the data: how far the schedule moves them)."""
    from fxenergy.analysis import analyse
    from fxenergy.perf.model import SCHEDULES

    rows = a30_model_rows()[: 6 if quick else None]
    devs = ("a30", "rtx-2080-ti")
    cols = [(v, d, s) for v in variants for d in devs for s in SCHEDULES if s != "max"]
    print("forward pass, batch 32: schedule total / 'max' total")
    print(f"{'model':<20}{'img':>5}" + "".join(f"{v[:7] + '/' + d[:5] + '/' + s:>22}" for v, d, s in cols))
    ratios: dict = {c: [] for c in cols}
    for name, size, _t, _e in rows:
        b = build_model(name, batch_size=32, image_size=size)
        inf = analyse(b.model, b.args, name=name)
        base = {(v, d): _total_s(inf, d, pp, "max") for v, pp in variants.items() for d in devs}
        for c in cols:
            ratios[c].append(_total_s(inf, c[1], variants[c[0]], c[2]) / base[(c[0], c[1])])
        print(f"{name:<20}{size:>5}" + "".join(f"{ratios[c][-1]:>22.3f}" for c in cols), flush=True)
    print(f"{'mean':<25}" + "".join(f"{np.mean(ratios[c]):>22.3f}" for c in cols))
    print(f"{'min':<25}" + "".join(f"{np.min(ratios[c]):>22.3f}" for c in cols) + "\n")


def transformer_shift(only: str | None) -> None:
    """Issue 11's transformer cases (eager attention, fp32, inference): learned / roofline per GPU under each
    schedule (no measurement in the data: reported, never tuned on)."""
    from gpu_models import IMPLIED, transformer_analyses

    from fxenergy.analysis import predict
    from fxenergy.perf.model import SCHEDULES, load_perf_params
    from fxenergy.resolve import resolve

    pp = load_perf_params()
    ratios: dict = {(d, s): [] for d in IMPLIED for s in SCHEDULES}
    for name, batch, seq, a in transformer_analyses(only):
        cells = []
        for d in IMPLIED:
            roof = float(sum(predict(a, resolve(d, "roofline")).duration_s.values()))
            r = [_total_s(a, d, pp, s) / roof for s in SCHEDULES]
            for s, x in zip(SCHEDULES, r):
                ratios[(d, s)].append(x)
            cells.append("/".join(f"{x:.3f}" for x in r))
        print(f"{name:<12}{batch:>3}{seq:>6} " + " ".join(f"{c:>20}" for c in cells), flush=True)
    print("mean learned/roofline per GPU, " + " / ".join(SCHEDULES) + ":")
    for d in IMPLIED:
        if ratios[(d, "max")]:
            print(f"  {d:<16} " + " / ".join(f"{np.mean(ratios[(d, s)]):.3f}" for s in SCHEDULES)
                  + f" ({len(ratios[(d, 'max')])} cases)")


def speed() -> None:
    """``annotate`` alone under "max" and "loop", best of 4 alternating runs in one process (time only)."""
    import torch
    from gpu_models import _hf

    from fxenergy.analysis import GraphView, analyse
    from fxenergy.hardware import load_profile
    from fxenergy.perf.model import LearnedGPUModel

    def vision(mode: str):  # noqa: ANN202
        b = build_model("resnet50", batch_size=32)
        return analyse(b.model, b.args, mode=mode, optimizer="sgd")

    cases = {"resnet50 b32": lambda: vision("inference"), "resnet50 b32 SGD step": lambda: vision("training"),
             "gpt2 b1 s512": lambda: analyse(_hf("GPT2", "eager", n_layer=12, n_embd=768, n_head=12), (), example_kwargs={
                 "input_ids": torch.empty(1, 512, dtype=torch.long, device="meta")})}
    prof = load_profile("a30")
    for name, build in cases.items():
        gm = build().graph_module
        best = {"max": float("inf"), "loop": float("inf")}
        for s in ("max", "loop") * 4:
            view, model = GraphView(gm), LearnedGPUModel(prof, schedule=s)
            t0 = time.perf_counter()
            model.annotate(view)
            best[s] = min(best[s], time.perf_counter() - t0)
        print(f"{name:<24} annotate, best of 4: max {best['max'] * 1e3:.1f} ms, loop {best['loop'] * 1e3:.1f} ms "
              f"({(best['loop'] / best['max'] - 1) * 100:+.1f}%)")


def main() -> int:
    from fxenergy.analysis import analyse
    from fxenergy.perf.model import SCHEDULES, load_perf_params

    ap = argparse.ArgumentParser()
    ap.add_argument("--floors", help="learned-gpu JSON whose dispatch_floors to run as the setting-floor variant")
    ap.add_argument("--quick", action="store_true", help="the first 6 models")
    ap.add_argument("--inference", action="store_true", help="also the forward passes on the A30 and RTX 2080 Ti")
    ap.add_argument("--transformers", nargs="?", const="all", metavar="MODEL",
                    help="only the transformer table (one model of gpu_models.TRANSFORMERS, or all)")
    ap.add_argument("--speed", action="store_true", help="only time annotate under 'max' and 'loop'")
    args = ap.parse_args()
    t0 = time.time()
    if args.speed:
        speed()
        return 0
    if args.transformers:
        transformer_shift(None if args.transformers == "all" else args.transformers)
        print(f"({time.time() - t0:.0f} s)")
        return 0
    shipped = load_perf_params()
    variants = {"pooled floor": shipped}
    if args.floors:
        fl = json.loads(Path(args.floors).read_text())["params"]["dispatch_floors"]
        variants["setting floors"] = replace(shipped, dispatch_floors={d: {f: float(v) for f, v in x.items()} for d, x in fl.items()})
    if args.inference:
        inference_shift(variants, args.quick)
    rows = a30_model_rows()[: 6 if args.quick else None]
    meas_t = np.array([r[2] for r in rows])
    meas_e = np.array([r[3] for r in rows])
    t = {}  # (variant, schedule) -> per-row time
    e = {}  # (variant, schedule) -> rows x uplifts energy
    for name, size, _t, _e in rows:
        b = build_model(name, batch_size=32, image_size=size)
        tr = analyse(b.model, b.args, mode="training", optimizer="sgd", name=name)
        for v, pp in variants.items():
            for s in SCHEDULES:
                dur, en = _predict(tr, pp, s)
                t.setdefault((v, s), []).append(dur)
                e.setdefault((v, s), []).append(en)
    print(f"A30 training step, batch 32, {len(rows)} models: time error % per model (pred/meas - 1)")
    keys = list(t)
    print(f"{'model':<20}{'img':>5}{'meas ms':>9}" + "".join(f"{v[:7] + '/' + s:>16}" for v, s in keys))
    for i, (name, size, mt, _e) in enumerate(rows):
        print(f"{name:<20}{size:>5}{mt * 1e3:>9.2f}" + "".join(f"{(t[k][i] / mt - 1) * 100:>+16.1f}" for k in keys))
    print(f"\n{'variant':<28}{'time med':>9}{'mean':>7}{'worst':>7}{'bias':>7}{'E med':>8}{'mean':>7}{'worst':>7}"
          f"{'E0 med':>8}{'upl':>6}")
    for k in keys:
        et = np.abs(np.array(t[k]) / meas_t - 1) * 100
        bias = np.mean(np.array(t[k]) / meas_t - 1) * 100
        grid = np.array(e[k])
        loss = np.abs(np.log(grid / meas_e[:, None]))
        ee = []
        for i in range(len(rows)):
            j = int(np.argmin(loss[np.arange(len(rows)) != i].mean(axis=0)))
            ee.append(abs(grid[i, j] / meas_e[i] - 1) * 100)
        e0 = np.abs(grid[:, 0] / meas_e - 1) * 100
        print(f"{k[0] + ' / ' + k[1]:<28}{np.median(et):>9.1f}{np.mean(et):>7.1f}{np.max(et):>7.1f}{bias:>+7.1f}"
              f"{np.median(ee):>8.1f}{np.mean(ee):>7.1f}{np.max(ee):>7.1f}{np.median(e0):>8.1f}"
              f"{UPLIFTS[int(np.argmin(loss.mean(axis=0)))]:>6.2f}")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
