"""Leave-one-GPU-out of the per-tile utilisation model (fxenergy/perf/tiles.py) beside the shipped trees.

    flock /tmp/fxenergy-cpu.lock uv run python scripts/gpu_tile_logo.py --family gemm --sample 0.04

For each held-out GPU of gpu-kernels-neusight: the tile MLP and the boosted trees (fit_gpu_perf's
features and hyper-parameters) are fitted on the other four GPUs' kernel-dominated rows (> 3x the
harness floor) of the same random sample, and both predict the held-out GPU's kernel-dominated rows
(plus the median harness floor of the other four). Printed: median / p90 APE of each, the plain
roofline's median, the tile model's median log bias, and the median APE over rows slower than 1 ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_gpu_perf import FLOOR_MULT, ape, harness_floors  # noqa: E402

from fxenergy.perf.datasets import load_neusight  # noqa: E402
from fxenergy.perf.fitting import design, fit_forest, fit_tile_mlp, tile_design  # noqa: E402
from fxenergy.perf.tiles import TileMLP  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=("gemm", "conv"), default="gemm")
    ap.add_argument("--sample", type=float, default=0.04)
    ap.add_argument("--device-features", action="store_true", help="give the MLP the spec-sheet features too")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    args = ap.parse_args(argv)

    ops = ("linear", "bmm") if args.family == "gemm" else ("conv",)
    rows = load_neusight((*ops, "add"))
    floors = harness_floors(rows)
    rng = np.random.default_rng(0)
    fam = np.array([k.family for k in rows.kernels])
    devs = np.asarray(rows.device)
    idx = np.flatnonzero(fam == args.family)
    idx = idx[rng.random(len(idx)) < args.sample]
    ks = [rows.kernels[i] for i in idx]
    meas = rows.seconds[idx]
    d = devs[idx]
    fl = np.array([floors[x] for x in d])
    Xf, yf, tb = design(ks, meas, d.tolist(), True, offset_s=fl)
    Xt, t0, wv = tile_design(ks, d.tolist(), device_features=args.device_features)
    ylog = np.log(np.maximum(meas - fl, 0.05 * meas))
    big = meas > FLOOR_MULT * fl
    print(f"{args.family}: {len(ks)} rows ({args.sample:.0%} sample); device features in the MLP: {args.device_features}")
    print(f"{'held-out GPU':<17}{'rows':>6}{'tile med':>9}{'p90':>7}{'trees med':>10}{'p90':>7}{'roof med':>9}"
          f"{'tile bias':>10}{'>1ms':>6}{'tile':>7}{'trees':>7}")
    meds = []
    for held in sorted(set(d.tolist())):
        tr, te = (d != held) & big, (d == held) & big
        hf = float(np.median([floors[x] for x in set(d.tolist()) if x != held]))
        model = TileMLP(fit_tile_mlp(Xt[tr], t0[tr], wv[tr], ylog[tr], hidden=args.hidden, steps=args.steps,
                                     weight_decay=args.weight_decay, device_features=args.device_features))
        lp = (t0[te] - model.log_util(Xt[te], wv[te])).min(axis=1)
        pt = np.maximum(np.exp(lp), tb[te]) + hf
        pf = tb[te] * np.exp(np.maximum(fit_forest(Xf[tr], yf[tr]).predict(Xf[te]), 0.0)) + hf
        m = meas[te]
        et, ef, er = ape(pt, m), ape(pf, m), ape(tb[te] + hf, m)
        slow = m > 1e-3
        print(f"{held:<17}{te.sum():>6}{np.median(et):>9.1f}{np.percentile(et, 90):>7.1f}{np.median(ef):>10.1f}"
              f"{np.percentile(ef, 90):>7.1f}{np.median(er):>9.1f}{np.median(np.log(pt / m)):>+10.3f}{slow.sum():>6}"
              f"{np.median(et[slow]):>7.1f}{np.median(ef[slow]):>7.1f}", flush=True)
        meds.append((np.median(et), np.median(ef), np.median(er)))
    mt, mf, mr = np.mean(meds, axis=0)
    print(f"mean over held-out GPUs of the median APE: tile {mt:.1f}, trees {mf:.1f}, roofline {mr:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
