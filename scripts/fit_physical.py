"""Fit the ``physical`` backend's Xeon Gold 5120 parameter set on seed 000's architecture runs.

    uv run python scripts/fit_physical.py            # write fxenergy/predictors/params/physical-xeon-gold-5120.json
                                                     # (with its leave-one-architecture-out error, ~4 min)
    uv run python benchmarks/cpu_energy.py           # leave-one-architecture-out accuracy (imports this file)

Data (``--data``, default ../shared/data): ``cpu-layers-getzner/architecture-layers/0[01]_architectures-
layerwise-raw.csv``: AlexNet and VGG11/13/16 on 2 cores of a Xeon Gold 5120 whose whole package RAPL
measured. ``layer_idx`` 0 is the whole model; ``layer_idx`` i > 0 the i-th module of the torchvision
model run alone. Per row: seconds per pass = ``duration / forward_passes``; energy per pass =
``cpu_energy`` (kWh) x 3.6e6 / ``forward_passes`` (``energy_consumed`` is codecarbon's invented RAM
power: not used); package power = ``cpu_energy`` x 3.6e6 / ``duration``. Repetitions are averaged.

The fit (:func:`fit`), given the rows of some architectures:

1. each layer row is matched to its node of fxenergy's graph of the torchvision model at that batch
   (the i-th ``call_module`` node), so its work (FLOPs, bytes) is fxenergy's own count;
2. per kernel class (dense convolution, matmul, pooling, element-wise, ...) ONE factor on the
   spec-sheet duration of :mod:`fxenergy.perf.cpu` at 2 threads: per (architecture, batch) run the
   measured / spec seconds of the class's layers summed, then the geometric mean over runs (a three-parameter power law per class was tried first: on
   VGG's narrow range of layer sizes its ramp is not identified, and it priced AlexNet's smaller
   convolutions 10x too slow when AlexNet was held out); a class with under 4 rows keeps the spec;
3. package power: the idle share is fitted so that the model's mean power matches the median measured
   power of the whole-model runs; a busy core's dynamic power is the spec sheet's ((TDP - idle) / cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from fxenergy.capture import capture  # noqa: E402
from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.passes.costs import CostPass, get_convention  # noqa: E402
from fxenergy.passes.durations import DurationPass, _launches  # noqa: E402
from fxenergy.passes.working_sets import WorkingSetPass  # noqa: E402
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, CpuPowerModel, cpu_spec, kernel_class  # noqa: E402
from fxenergy.predictors.interface import make_artifact, params_dir  # noqa: E402
from fxenergy.predictors.physical import PhysicalPredictor  # noqa: E402
from fxenergy.records import COST, DURATION, META_KEY, TRACE, get_record  # noqa: E402

KWH = 3.6e6
HARDWARE = "xeon-gold-5120"
THREADS = 2
FILES = ("00_architectures-layerwise-raw.csv", "01_architectures-layerwise-raw.csv")
DATASET = ("cpu-layers-getzner (JohannesGetzner/dl-energy-estimator @2279b0a): architecture-layers/"
           "0[01]_architectures-layerwise-raw.csv, AlexNet/VGG11/13/16 whole models and their layers")
_PROJ = re.compile(r"(\w+):([^,]+)")


def default_data() -> Path:
    return ROOT.parent / "shared" / "data"


def _project(name: str) -> dict[str, str]:
    out = dict(_PROJ.findall(name))
    for part in out.pop("freeText", "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def read_runs(data: Path) -> list[dict]:
    """One dict per (architecture, batch, layer_idx): mean seconds, joules per pass, mean watts."""
    acc: dict[tuple, list[tuple[float, float, float]]] = {}
    for fname in FILES:
        with open(data / "cpu-layers-getzner" / "architecture-layers" / fname) as fh:
            for r in csv.DictReader(fh):
                p = _project(r["project_name"])
                n, dur, e = float(p["forward_passes"]), float(r["duration"]), float(r["cpu_energy"]) * KWH
                key = (p["architecture"], int(p["batch_size"]), int(p["layer_idx"]), p["module"])
                acc.setdefault(key, []).append((dur / n, e / n, e / dur))
    return [{"architecture": a, "batch_size": b, "layer_idx": i, "module": m,
             "seconds": statistics.mean(x[0] for x in v), "energy_j": statistics.mean(x[1] for x in v),
             "watts": statistics.median(x[2] for x in v), "reps": len(v)}
            for (a, b, i, m), v in sorted(acc.items())]


_GRAPHS: dict[tuple[str, int], torch.fx.GraphModule] = {}


def graph(arch: str, batch: int) -> torch.fx.GraphModule:
    """fxenergy's annotated (costs, working sets) inference graph of a torchvision model, cached."""
    key = (arch, batch)
    if key not in _GRAPHS:
        gm = capture(getattr(torchvision.models, arch)(), torch.empty(batch, 3, 224, 224, device="meta")).graph_module
        CostPass(get_convention("default"))(gm)
        WorkingSetPass()(gm)
        _GRAPHS[key] = gm
    return _GRAPHS[key]


def layer_rows(runs: list[dict]) -> list[dict]:
    """Layer rows (layer_idx > 0) with their node's kernel class and work; modules that do no work
    in fxenergy's graph (eval-mode dropout) are left out."""
    out = []
    for r in runs:
        if r["layer_idx"] == 0:
            continue
        gm = graph(r["architecture"], r["batch_size"])
        mods = [n for n in gm.graph.nodes if n.op == "call_module"]
        if r["layer_idx"] > len(mods):
            continue
        node = mods[r["layer_idx"] - 1]
        cost, trace = get_record(node, COST), get_record(node, TRACE)
        if cost is None or cost.free:
            continue
        cls = kernel_class(trace, cost)
        # the classes added for calibrated CPUs (stems, activations) share their parent's factor here: the
        # shipped fit predates them, and one factor per parent class is what its error figures describe
        cls = {"conv_stem": "conv_dense", "activation": "elementwise"}.get(cls, cls)
        out.append({**r, "class": cls, "flops": cost.flops or cost.elementwise_flops,
                    "bytes": cost.bytes_read + cost.bytes_written, "launches": _launches(trace), "cost": cost})
    return out


def fit(runs: list[dict]) -> dict:
    """The physical artifact fitted on ``runs`` (see the module docstring)."""
    profile = load_profile(HARDWARE)
    spec = cpu_spec(profile, THREADS)
    peak_bytes = spec.levels[-1][2]
    layers = layer_rows(runs)
    scales, stats = {}, {}
    for cls in sorted({r["class"] for r in layers}):
        rows = [r for r in layers if r["class"] == cls]
        if len(rows) < 4:
            continue
        for r in rows:
            r["spec_s"] = CpuDurationModel._spec_time(spec, cls, r["cost"])[0]
        # per (architecture, batch) run: measured / spec seconds summed over the class's layers (the large
        # layers that set a model's total weigh most); then the geometric mean over runs (every batch alike)
        by_run: dict[tuple, list[dict]] = {}
        for r in rows:
            by_run.setdefault((r["architecture"], r["batch_size"]), []).append(r)
        ratios = np.array([sum(r["seconds"] for r in rs) / sum(r["spec_s"] for r in rs) for rs in by_run.values()])
        scale = float(np.exp(np.mean(np.log(ratios))))
        ape = np.abs(ratios / scale - 1)
        scales[cls] = round(scale, 5)
        stats[cls] = {"layer_rows": len(rows), "runs": len(ratios), "scale": round(scale, 4),
                      "run_mdape": round(float(np.median(ape)), 4), "run_max_ape": round(float(np.max(ape)), 4)}
    perf = CpuPerfParams({}, spec.peak_flops, peak_bytes, THREADS, profile.kernel_launch_overhead_s,
                         {"in_sample": stats}, scales)
    # power: idle share so that the model's mean power over the whole-model runs = their median watts
    whole = [r for r in runs if r["layer_idx"] == 0]
    measured_w = statistics.median(r["watts"] for r in whole)
    spec_power = CpuPowerModel(profile, THREADS)
    dm = CpuDurationModel(profile, THREADS, perf)
    us = [_mean_utilisation(graph(r["architecture"], r["batch_size"]), dm) for r in whole]
    busy = spec_power.busy_share
    idle_w = measured_w - spec_power.core_w * THREADS * (busy + (1 - busy) * statistics.mean(us))
    archs = sorted({r["architecture"] for r in runs})
    fitted_on = {"dataset": DATASET, "architectures": archs, "layer_rows": len(layers), "whole_model_runs": len(whole),
                 "batch_sizes": [min(r["batch_size"] for r in whole), max(r["batch_size"] for r in whole)],
                 "threads": THREADS, "measured_package_w_median": round(measured_w, 2),
                 "target": "seconds per pass = duration / forward_passes; watts = cpu_energy x 3.6e6 / duration",
                 "in_sample": stats}
    power = {"idle_w": round(idle_w, 3), "core_w": round(spec_power.core_w, 4), "busy_share": busy,
             "source": f"package power fitted on seed 000's RAPL runs (median {measured_w:.1f} W on {THREADS} of "
                       f"{profile.compute_units} cores; the whole package measured)"}
    return make_artifact("physical", HARDWARE, {"perf": perf.to_dict(), "power": power, "threads": THREADS}, fitted_on)


def _durations(gm: torch.fx.GraphModule, dm: CpuDurationModel) -> None:
    """(Re)run the CPU duration pass on a cached graph: the previous model's records are dropped first
    (a pass never overwrites a record; here the same graph is priced by many fitted models)."""
    for node in gm.graph.nodes:
        node.meta.get(META_KEY, {}).pop(DURATION, None)
    DurationPass(dm.profile, "cpu", cpu_model=dm)(gm)


def _mean_utilisation(gm: torch.fx.GraphModule, dm: CpuDurationModel) -> float:
    _durations(gm, dm)
    t = u = 0.0
    for node in gm.graph.nodes:
        d = get_record(node, DURATION)
        if d is not None:
            t += d.duration_s
            u += dm.bound_time_s(get_record(node, COST))
    return min(1.0, u / t) if t else 0.0


def predict_j(artifact: dict | None, arch: str, batch: int, threads: int = THREADS) -> float:
    """Whole-model energy per forward pass (J) by the physical backend with ``artifact`` (None: spec sheet)."""
    profile = load_profile(HARDWARE)
    p = PhysicalPredictor.for_profile(profile, artifact, threads=threads) if artifact is not None else \
        PhysicalPredictor(threads=threads, parameter_set="spec sheet", hardware=HARDWARE)
    gm = graph(arch, batch)
    _durations(gm, p.duration_model(profile))
    est = p.predict(gm, profile)
    return sum(est.node_energy_j.values()) + est.overhead_j


def held_out_fits(runs: list[dict]):  # noqa: ANN201 - Iterator[tuple[str, dict, list[dict]]]
    """Leave one architecture out: per architecture, ``(architecture, artifact fitted on the others, its
    whole-model runs)``."""
    for arch in sorted({r["architecture"] for r in runs}):
        yield arch, fit([r for r in runs if r["architecture"] != arch]), \
            [r for r in runs if r["architecture"] == arch and r["layer_idx"] == 0]


def validated(runs: list[dict]) -> dict:
    """The ``validated`` block of the artifact: leave-one-architecture-out energy error per whole-model run
    (what ``fxenergy hardware show`` and the report's summary state)."""
    ape = [abs(predict_j(art, arch, r["batch_size"]) / r["energy_j"] - 1) * 100
           for arch, art, whole in held_out_fits(runs) for r in whole]
    archs = sorted({r["architecture"] for r in runs})
    return {HARDWARE: {"quantity": "energy", "median_pct": round(float(np.median(ape)), 1),
                       "mean_pct": round(float(np.mean(ape)), 1), "worst_pct": round(float(np.max(ape)), 1),
                       "on": f"leave-one-architecture-out over {', '.join(archs)} whole-model runs "
                             f"({len(ape)} runs, {THREADS} threads, RAPL package; scripts/fit_physical.py)"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    args = ap.parse_args(argv)
    runs = read_runs(args.data)
    art = fit(runs)
    art["validated"] = validated(runs)
    print(f"validated: {art['validated']}")
    path = params_dir() / f"physical-{HARDWARE}.json"
    path.write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: power {art['params']['power']}; in-sample {art['fitted_on']['in_sample']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
