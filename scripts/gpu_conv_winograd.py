"""The Winograd-aware lower bound of 3x3 stride-1 convolutions, checked on measured rows, and leave-one-GPU-out of
the conv model with and without it.

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_conv_winograd.py   # ~1 min, the fit's 15% sample

1. Every conv row of gpu-kernels-neusight (fp32; all 3x3, stride 1, so all Winograd-eligible): the fraction whose
   *measured* time (harness floor included) is below the learned model's kernel roofline (fp32 peak at the profile's
   clock, bytes at DRAM bandwidth) over a factor 1 (the direct count, before), 2.25 (F(2x2,3x3)) and
   ``WINOGRAD_MULTIPLY_FACTOR``; and below the physical bound the estimates are checked against
   (:class:`fxenergy.passes.durations.LowerBound`, the device's highest peak) without and with the factor.
2. :func:`fit_gpu_perf.logo_and_fit` on the conv rows (fit on three GPUs, predict the fourth; the forests are the
   same, only the prediction's floor differs): ``direct`` = never below the direct-count roofline (before),
   ``/2.25`` and ``/F`` = a Winograd-eligible row down to that roofline over 2.25 or WINOGRAD_MULTIPLY_FACTOR.
   Kernel-dominated rows (> 3x the harness floor), median APE % (p90), bias = median log(pred/meas).
Time only: public per-call latencies, no GPU ran here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import fit_gpu_perf as fit  # noqa: E402

from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.perf import kernels as kmod  # noqa: E402
from fxenergy.perf.datasets import load_neusight  # noqa: E402
from fxenergy.perf.device import device_spec  # noqa: E402
from fxenergy.perf.features import bounds_s  # noqa: E402

F = kmod.WINOGRAD_MULTIPLY_FACTOR


def below_bounds(rows) -> None:  # noqa: ANN001
    fam = np.array([k.family for k in rows.kernels])
    idx = np.flatnonzero(fam == "conv")
    devs = np.asarray(rows.device)[idx]
    print(f"measured conv rows below a bound, % of the GPU's rows (factor {F:g} = WINOGRAD_MULTIPLY_FACTOR)")
    print(f"{'GPU':<17}{'rows':>6}{'eligible':>9}{'min meas/roof':>14}{'<roof':>8}{'<roof/2.25':>11}{f'<roof/{F:g}':>9}"
          f"{'<phys':>8}{f'<phys/{F:g}':>10}")
    for d in sorted(set(devs.tolist())):
        sel = idx[devs == d]
        ks = [rows.kernels[i] for i in sel]
        meas = rows.seconds[sel]
        prof = load_profile(d)
        roof = bounds_s(ks, device_spec(prof), "highest", conv_tf32=False)  # fp32 as measured
        peak = max(prof.peak_flops_for(torch.float32), prof.peak_flops_for(torch.float16))  # LowerBound's peak
        phys = np.array([k.flops for k in ks]) / peak
        phys_w = np.array([k.min_flops for k in ks]) / peak
        r = meas / roof
        elig = np.mean([k.winograd for k in ks]) * 100
        print(f"{d:<17}{len(sel):>6}{elig:>8.0f}%{r.min():>14.3f}{np.mean(r < 1) * 100:>7.2f}%"
              f"{np.mean(r < 1 / 2.25) * 100:>10.2f}%{np.mean(r < 1 / F) * 100:>8.2f}%"
              f"{np.mean(meas < phys) * 100:>7.2f}%{np.mean(meas < phys_w) * 100:>9.2f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=float, default=0.15, help="fraction of kernel rows (default 0.15, the fit's)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0, the fit's)")
    args = ap.parse_args(argv)
    rows = load_neusight(ops=("linear", "bmm", "conv", "add"))  # linear/bmm keep the fit's conv draw
    below_bounds(rows)
    out = {}
    for label, wino, factor in (("direct", False, F), ("/2.25", True, 2.25), (f"/{F:g}", True, F)):
        fit.WINOGRAD_MULTIPLY_FACTOR = factor  # fit.min_log_slowdown reads it
        print(f"== {label}")
        table, *_ = fit.logo_and_fit(rows, args.sample, seed=args.seed, harness="additive", families=("conv",),
                                     winograd=wino)
        out[label] = {r["held_out"]: r for r in table if r["family"] == "conv"}
    fit.WINOGRAD_MULTIPLY_FACTOR = F
    labels = list(out)
    print("\nconv leave-one-GPU-out, kernel-dominated rows: median APE % (p90) and bias per held-out GPU")
    print(f"{'held-out GPU':<17}" + "".join(f"{lab:>15}{'bias':>7}" for lab in labels) + f"{'roofline':>10}")
    for g in out[labels[0]]:
        print(f"{g:<17}" + "".join(f"{out[lab][g]['median_kernel']:>8.1f} ({out[lab][g]['p90_kernel']:>4.0f})"
                                   f"{out[lab][g]['bias_kernel']:>+7.2f}" for lab in labels)
              + f"{out[labels[0]][g]['roofline_median_kernel']:>10.1f}")
    print(f"{'mean of medians':<17}" + "".join(f"{np.mean([r['median_kernel'] for r in out[lab].values()]):>15.1f}{'':>7}"
                                               for lab in labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
