"""Leave-one-GPU-out of the GEMM and conv forests with every design column against the shipped columns.

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_gemm_logo.py            # ~1 min, 15% sample
    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_gemm_logo.py --seed 1   # another sample

Both runs use :func:`fit_gpu_perf.logo_and_fit` on the same rows (the fit's sample and seed): fit on four GPUs of
gpu-kernels-neusight, predict every row of the fifth. ``before``: the forests fitted on every column of the GEMM
design and every row (as shipped before gpu6); ``after``: the GEMM forest without ``features.GEMM_FOREST_DROPPED``
and not fitted on the clock-collapsed rows of ``fitting.THROTTLED`` (scored all the same; conv unchanged).
Figures are on kernel-dominated rows (> 3x the harness floor), APE = |pred/meas - 1|, with the plain roofline under
the same floor beside them. The GEMM summary adds two subsets of those rows: roofline bound > 1 ms, and
transformer-shaped rows (benchmarks/gpu_transformer_kernels.py's rules for linear and bmm). It also prints the
evidence for THROTTLED: achieved fp32 FLOP/s over the spec peak by kernel duration, per GPU and op. Time only:
public per-call latencies, no GPU ran here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import fit_gpu_perf as fit  # noqa: E402

from fxenergy.perf.datasets import load_neusight  # noqa: E402
from fxenergy.perf.features import GEMM_FOREST_DROPPED  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=float, default=0.15, help="fraction of kernel rows (default 0.15, the fit's)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0, the fit's)")
    args = ap.parse_args(argv)
    # linear, bmm and conv rows, plus `add` for the harness floors: the GEMM and conv draws equal the fit's
    rows = load_neusight(ops=("linear", "bmm", "conv", "add"))
    throttle_evidence(rows)
    out = {}
    for label, dropped, drop_thr in (("before", (), False), ("after", GEMM_FOREST_DROPPED, True)):
        print(f"== {label}: GEMM forest without columns {list(dropped) or 'none'}, "
              f"{'not fitted on' if drop_thr else 'fitted on'} THROTTLED rows; {args.sample:.0%} sample, seed {args.seed}")
        print(fit.HEADER)
        table, *_ = fit.logo_and_fit(rows, args.sample, seed=args.seed, harness="additive", families=("gemm", "conv"),
                                     gemm_dropped=dropped, drop_throttled=drop_thr)
        out[label] = {(r["family"], r["held_out"]): r for r in table}
    print("\nkernel-dominated rows, median APE % (p90) per held-out GPU; roofline beside")
    print(f"{'family':<7}{'held-out GPU':<17}{'before':>15}{'after':>15}{'roofline':>10}{'bias before':>13}{'after':>7}")
    for fam in ("gemm", "conv"):
        keys = [k for k in out["after"] if k[0] == fam]
        for k in keys:
            b, a = out["before"][k], out["after"][k]
            print(f"{fam:<7}{k[1]:<17}{b['median_kernel']:>8.1f} ({b['p90_kernel']:>4.0f}){a['median_kernel']:>8.1f} "
                  f"({a['p90_kernel']:>4.0f}){a['roofline_median_kernel']:>10.1f}{b['bias_kernel']:>+13.2f}{a['bias_kernel']:>+7.2f}")
        mb = np.mean([out["before"][k]["median_kernel"] for k in keys])
        ma = np.mean([out["after"][k]["median_kernel"] for k in keys])
        mr = np.mean([out["after"][k]["roofline_median_kernel"] for k in keys])
        print(f"{fam:<7}{'mean of medians':<17}{mb:>15.1f}{ma:>15.1f}{mr:>10.1f}")
    print("\nGEMM subsets of the kernel-dominated rows, median APE % per held-out GPU, before -> after")
    for sub in ("large", "transformer"):
        cells = [f"{k[1][:5]} {out['before'][k]['sub'][sub]:.1f} -> {out['after'][k]['sub'][sub]:.1f}"
                 for k in out["after"] if k[0] == "gemm"]
        mb = np.mean([out["before"][k]["sub"][sub] for k in out["after"] if k[0] == "gemm"])
        ma = np.mean([out["after"][k]["sub"][sub] for k in out["after"] if k[0] == "gemm"])
        print(f"  {sub:<12}" + " | ".join(cells) + f" | mean {mb:.1f} -> {ma:.1f}")
    return 0


def throttle_evidence(rows) -> None:  # noqa: ANN001
    """Achieved fp32 FLOP/s over the profile's peak (at its effective clock) of linear and bmm calls with full
    128x128 waves (>= 4 waves, wave efficiency > 0.9), median per half-decade of kernel time (harness floor out)."""
    from fxenergy.hardware import load_profile
    from fxenergy.perf.device import device_spec
    from fxenergy.perf.features import GEMM_FEATURES
    from fxenergy.perf.fitting import design

    floors = fit.harness_floors(rows)
    fam = np.array([k.family for k in rows.kernels])
    devs, ops = np.asarray(rows.device), np.asarray(rows.op)
    print("achieved FLOP/s / fp32 peak, by log10(kernel s): median (rows); full 128x128 waves only")
    for op in ("linear", "bmm"):
        for g in sorted(set(devs.tolist())):
            idx = np.flatnonzero((fam == "gemm") & (ops == op) & (devs == g))
            ks = [rows.kernels[i] for i in idx]
            X, _, _ = design(ks, rows.seconds[idx], [g] * len(ks), True)
            kt = rows.seconds[idx] - floors[g]
            ok = ((X[:, GEMM_FEATURES.index("wave_eff_128x128")] > 0.9) & (X[:, GEMM_FEATURES.index("log2_waves_128x128")] >= 2)
                  & (rows.seconds[idx] > fit.FLOOR_MULT * floors[g]))
            eff = np.array([k.flops for k in ks])[ok] / kt[ok] / device_spec(load_profile(g)).peak_flops["fp32"]
            b = np.floor(np.log10(kt[ok]) * 2) / 2
            cells = [f"{x:+.1f}:{np.median(eff[b == x]):.2f}({(b == x).sum()})" for x in sorted(set(b)) if (b == x).sum() >= 5]
            print(f"  {op:<7}{g:<17}" + " ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
