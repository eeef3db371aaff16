"""CPU energy, leave-one-architecture-out, on seed 000's Xeon Gold 5120 whole-model runs.

    uv run python benchmarks/cpu_energy.py [--data ../shared/data]      # about 3-4 minutes on 2 cores

For each architecture A of AlexNet, VGG11, VGG13, VGG16: the ``physical`` backend is fitted
(:func:`scripts/fit_physical.fit`) on the OTHER three architectures' layer and whole-model runs, then
predicts A's whole-model energy per forward pass at every batch size measured (RAPL package,
``cpu_energy``; 2 threads on 2 of 14 cores). Beside it, with nothing fitted on A either:
the uncalibrated spec-sheet physical model (threads=2), the roofline backend as it was the default
(14 cores at peak), and the shipped layer-wise backend (whose training data contains every
architecture's layer configs: NOT held out, it flatters that column). Targets (issue 12): median
<= 15%, no run off by 2x (ratio in [0.5, 2]).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import fit_physical as FP  # noqa: E402
import numpy as np  # noqa: E402


def _roofline_j(arch: str, batch: int) -> float | None:
    from fxenergy.hardware import load_profile
    from fxenergy.passes.durations import DurationPass
    from fxenergy.predictors.power import RooflinePowerPredictor
    from fxenergy.records import DURATION, META_KEY

    profile = load_profile(FP.HARDWARE)
    gm = FP.graph(arch, batch)
    for node in gm.graph.nodes:  # the cached graph carries another model's durations
        node.meta.get(META_KEY, {}).pop(DURATION, None)
    DurationPass(profile, "roofline")(gm)
    return sum(RooflinePowerPredictor().predict(gm, profile).node_energy_j.values())


def _layerwise_j(arch: str, batch: int) -> str:
    from fxenergy.predictors.interface import load_artifact
    from fxenergy.predictors.layerwise import LayerwisePredictor, OutOfDomainError

    p = LayerwisePredictor.from_json(load_artifact("layerwise", f"layerwise-{FP.HARDWARE}"))
    try:
        return sum(p.predict(FP.graph(arch, batch)).node_energy_j.values())
    except OutOfDomainError:
        return None


def summary(label: str, ratios: list[float]) -> str:
    ape = np.abs(np.array(ratios) - 1) * 100
    off2 = sum(1 for r in ratios if not 0.5 <= r <= 2)
    return (f"| {label} | {len(ratios)} | {np.median(ape):.1f}% | {np.mean(ape):.1f}% | {np.max(ape):.1f}% | "
            f"{off2} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=FP.default_data())
    args = ap.parse_args(argv)
    if not (args.data / "cpu-layers-getzner").is_dir():
        print(f"no data at {args.data}/cpu-layers-getzner: nothing to measure")
        return 1
    runs = FP.read_runs(args.data)
    archs = sorted({r["architecture"] for r in runs})
    cols: dict[str, list[float]] = {"physical (LOAO fit)": [], "physical, spec sheet, threads=2": [],
                                    "roofline (old default, 14 cores)": [], "layerwise (shipped, not held out)": []}
    lw_refused = 0
    held: list[str] = []  # architecture of each held-out run, in the order of the columns
    print("| architecture | batch | measured J | physical J | ratio | spec J | roofline J | layerwise J |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for arch, art, whole in FP.held_out_fits(runs):
        for r in whole:
            b, meas = r["batch_size"], r["energy_j"]
            phys = FP.predict_j(art, arch, b)
            spec = FP.predict_j(None, arch, b)
            roof = _roofline_j(arch, b)
            lw = _layerwise_j(arch, b)
            held.append(arch)
            cols["physical (LOAO fit)"].append(phys / meas)
            cols["physical, spec sheet, threads=2"].append(spec / meas)
            cols["roofline (old default, 14 cores)"].append(roof / meas)
            if lw is None:
                lw_refused += 1
            else:
                cols["layerwise (shipped, not held out)"].append(lw / meas)
            lw_s = "refused" if lw is None else f"{lw:.1f}"
            print(f"| {arch} | {b} | {meas:.1f} | {phys:.1f} | {phys / meas:.3f} | {spec:.1f} | {roof:.1f} | {lw_s} |")
    print("\n| predictor | runs | median APE | mean APE | worst APE | off by > 2x |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, ratios in cols.items():
        print(summary(label, ratios))
    print(f"\nlayerwise refused {lw_refused} runs (outside its training domain)")
    per_arch = {a: statistics.median(abs(x - 1) * 100 for x, h in zip(cols["physical (LOAO fit)"], held) if h == a)
                for a in archs}
    print("physical LOAO median APE per held-out architecture: "
          + ", ".join(f"{a} {v:.1f}%" for a, v in per_arch.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
