"""In-sample check of the shipped learned GPU model on transformer-shaped NeuSight kernel rows.

    uv run python benchmarks/gpu_transformer_kernels.py

The rows are gpu-kernels-neusight's measured fp32 calls (V100-PCIe-32GB, T4, A100-PCIe-40GB) whose
shapes look like the layers of BERT-large / GPT-2-large / GPT-3-XL / OPT-1.3B at batch 1-16, seq
512-2048:

* ``linear``: tokens = B·M in 512..32768, in/out features in 1024..10240;
* ``bmm``: batch (= batch·heads) >= 16, M in 512..2048 and one of N, K in 64..128 (Q·Kᵀ or A·V);
* ``softmax``: row length in 256..2048 and >= 4096 rows (the data stops at 16k rows); ``ln``: row length 1024..2560, rows 512..32768;
* ``gelu``, ``tanh``, ``add``, ``mul``: >= 2^22 elements (an MLP activation of 1 x 512 x 8192 and up).

Prediction = the model's kernel time (``LearnedGPUModel.kernel_durations_s``, the profile named in
perf.datasets.NEUSIGHT_PROFILES) under NeuSight's timing harness, as scripts/fit_gpu_perf.py fits it:
GEMMs ``t + floor`` (the 5th percentile of that GPU's ``add`` rows), memory ops
``max(floor_op, lead·floor_op + t)`` (fitting.harness_time; ``--harness additive`` prices them as
GEMMs, the treatment before). These rows are *in* the training data: this is a sanity check of the
fitted model on the shapes that matter for the transformer table, not a validation. Printed per GPU
and family: rows, median / mean / worst APE, and the median of log(pred/meas) (bias: > 0 = slow).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.perf.datasets import load_neusight  # noqa: E402
from fxenergy.perf.fitting import harness_time, memory_harness  # noqa: E402
from fxenergy.perf.model import LearnedGPUModel  # noqa: E402

OPS = ("linear", "bmm", "softmax", "ln", "gelu", "tanh", "add", "mul")
MEMORY_OPS = ("add", "addu", "mul", "mulu", "div", "divu", "pow", "powu", "relu", "gelu", "tanh", "ln", "softmax")
DEVICES = ("v100-pcie-32gb", "t4", "a100-40gb-pcie")


def transformer_like(op: str, k) -> bool:  # noqa: ANN001 - Kernel
    if op == "linear":
        return 512 <= k.m <= 32768 and 1024 <= k.n <= 10240 and 1024 <= k.k <= 10240
    if op == "bmm":
        return k.batch >= 16 and 512 <= k.m <= 2048 and (64 <= k.n <= 128 or 64 <= k.k <= 128)
    if op == "softmax":
        return 256 <= k.cols <= 2048 and k.rows >= 2**12
    if op == "ln":
        return 1024 <= k.cols <= 2560 and 512 <= k.rows <= 32768
    return k.rows * k.cols >= 2**22


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=None, help="a learned-gpu JSON (default: the shipped one)")
    ap.add_argument("--harness", choices=("max", "additive"), default="max",
                    help="memory ops: max(floor_op, lead*floor_op + t) (default, as fit_gpu_perf.py fits them) or "
                         "floor + t (as before)")
    args = ap.parse_args(argv)
    rows = load_neusight(OPS)
    devs = np.asarray(rows.device)
    ops = np.asarray(rows.op)
    floors = {d: float(np.percentile(rows.seconds[(devs == d) & (ops == "add")], 5)) for d in DEVICES}
    mh = memory_harness(load_neusight(MEMORY_OPS))
    print(f"memory ops priced under the {args.harness!r} harness"
          + (f" (lead = {mh['lead']:.3f} x the op's floor, plus a memory law's fitted lead correction)"
             if args.harness == "max" else ""))
    print(f"{'GPU':<16}{'op':<9}{'rows':>6}{'med%':>7}{'mean%':>7}{'worst%':>8}{'bias':>7}   (bias = median log(pred/meas))")
    for d in DEVICES:
        model = LearnedGPUModel(load_profile(d), args.params)
        for op in OPS:
            idx = [i for i in np.flatnonzero((devs == d) & (ops == op)) if transformer_like(op, rows.kernels[i])]
            if not idx:
                continue
            t, _ = model.kernel_durations_s([rows.kernels[i] for i in idx])
            if args.harness == "max" and op not in ("linear", "bmm"):
                # a memory law's fitted lead correction is part of the harness (never of the kernel): added here
                law = model.memory_law("reduction" if op in ("softmax", "ln") else "elementwise")
                pred = harness_time(t, mh["op_floor_s"][(d, op)], mh["lead"] + (law.harness_lead if law else 0.0))
            else:
                pred = t + floors[d]
            meas = rows.seconds[idx]
            e = np.abs(pred / meas - 1) * 100
            bias = float(np.median(np.log(pred / meas)))
            print(f"{d:<16}{op:<9}{len(idx):>6}{np.median(e):>7.1f}{np.mean(e):>7.1f}{np.max(e):>8.1f}{bias:>+7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
