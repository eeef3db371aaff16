"""How the learned GPU model prices skinny fp32 GEMMs (batch-32 classifier layers: m = 32), against kernel data.

    uv run python scripts/gpu_skinny_gemm.py      # ~20 s

1. gpu-kernels-neusight `linear` rows with m <= 64 (in the fit unless throttled), by roofline-bound bin, per GPU
   (and the rows with k <= 64, the shape of a batch-32 weight gradient):
   median measured / bound, predicted kernel time / bound (no harness floor added) and the bias, median
   log(pred / meas). The fastest call of the GPU's `linear` file is printed beside: NeuSight's timing harness
   costs about that much per call, and the GEMM fit leaves out rows within 3x of it.
2. gpu-operators-nicolai `Linear` rows at batch 32 (forward, timed in a loop on the A30 and the RTX 2080 Ti; not
   in the kernel fit): predicted call time (kernel time, at least the dispatch floor) over measured.
Time only, from public data; nothing here runs on a GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.perf.datasets import load_neusight, load_nicolai_ops  # noqa: E402
from fxenergy.perf.model import LearnedGPUModel  # noqa: E402

BINS_S = ((0.0, 10e-6), (10e-6, 50e-6), (50e-6, 200e-6), (200e-6, 1.0))


def _bin(lo: float, hi: float) -> str:
    return f">{lo * 1e6:.0f} us" if hi >= 1.0 else f"{lo * 1e6:.0f}-{hi * 1e6:.0f} us"


def neusight() -> None:
    rows = load_neusight(("linear",))
    print("gpu-kernels-neusight linear, m <= 64: median measured/bound, predicted/bound, bias = median log(pred/meas)")
    print(f"{'GPU':<16}{'bound':>12}{'rows':>6}{'meas us':>9}{'meas/bnd':>9}{'pred/bnd':>9}{'bias':>7}{'fastest call us':>16}")
    for dev in sorted(set(rows.device)):
        idx = [i for i, d in enumerate(rows.device) if d == dev]
        ks = [rows.kernels[i] for i in idx]
        t, tb = LearnedGPUModel(load_profile(dev)).kernel_durations_s(ks)
        meas = rows.seconds[idx]
        m = np.array([k.m for k in ks])
        depth = np.array([k.k for k in ks])
        bins = [(_bin(lo, hi), (m <= 64) & (tb >= lo) & (tb < hi)) for lo, hi in BINS_S]
        # the shape of a weight gradient at batch <= 64: the reduction depth k is the batch
        bins.append(("k<=64 >20 us", (depth <= 64) & (tb >= 20e-6)))
        for label, sel in bins:
            if sel.sum():
                print(f"{dev:<16}{label:>12}{sel.sum():>6}{np.median(meas[sel]) * 1e6:>9.1f}"
                      f"{np.median(meas[sel] / tb[sel]):>9.2f}{np.median(t[sel] / tb[sel]):>9.2f}"
                      f"{np.median(np.log(t[sel] / meas[sel])):>+7.2f}{meas.min() * 1e6:>16.1f}")


def nicolai() -> None:
    df = load_nicolai_ops(("finalbench_all_operations_A30", "finalbench_all_operations_RTX2080TI"))
    print("\ngpu-operators-nicolai Linear at batch 32 (m = 32): predicted call / measured")
    print(f"{'setting':<11}{'m':>5}{'n':>6}{'k':>6}{'bound us':>10}{'meas us':>9}{'pred us':>9}{'pred/meas':>10}")
    for setting in df["setting"].unique():
        sub = df[(df["setting"] == setting) & (df["op_type"] == "Linear")].drop_duplicates(["label", "input_shape"])
        model = LearnedGPUModel(load_profile(sub["profile"].iloc[0]))
        ratios = []
        for kern, meas in zip(sub["kernels"], sub["time_per_iter_s"]):
            k = kern[0]
            if k.m > 64:
                continue
            t, tb = model.kernel_durations_s(kern)
            pred = max(float(t.sum()), model.floor_s(k.family))
            ratios.append(pred / meas)
            print(f"{setting:<11}{k.m:>5}{k.n:>6}{k.k:>6}{tb.sum() * 1e6:>10.1f}{meas * 1e6:>9.1f}{pred * 1e6:>9.1f}"
                  f"{pred / meas:>10.2f}")
        print(f"{setting}: median pred/meas {np.median(ratios):.2f} over {len(ratios)} layers")


if __name__ == "__main__":
    neusight()
    nicolai()
