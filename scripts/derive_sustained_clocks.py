"""Sustained fp32 clocks of the power-limited GPUs in the NeuSight kernel data (T4 70 W, P4 75 W).

Method (stated in the T4 and P4 profiles' sources): a GPU that holds its boost clock reaches a fraction
``e`` of its fp32 peak on the fastest GEMMs; we take ``e`` from the two cards of the data set that are
not power-limited (V100 PCIe and A100 PCIe: the 99th percentile of achieved FLOP/s of ``linear`` and
``bmm`` over the spec peak). A power-limited card that reaches less must be running at a lower clock:
``sustained = p99 achieved FLOP/s / e / (2 x fp32 lanes)``. This is an estimate (it assumes the same
kernel efficiency at equal clocks), marked as such in the profiles.

For the power-limited cards without kernel data (L4, A10, A40, L40S, RTX 6000 Ada) the profiles use a
power rule: clock = sibling's boost x (board W per SM / sibling's W per SM)^k, against a sibling of
the same architecture that holds its boost. ``k`` is fitted here on the T4 (sibling: RTX 2080 Ti)
and checked on the P4 (sibling: GTX 1080); k = 1/3 would be the textbook f*V^2 with V ~ f.

Run: ``uv run python scripts/derive_sustained_clocks.py`` (needs ../shared/data/gpu-kernels-neusight).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gpu-kernels-neusight" / "kernels"
# spec fp32 peak (FLOP/s) and fp32 lanes, from the bundled profiles' sources
SPEC = {
    "NVIDIA_A100-PCIE-40GB": (19.5e12, 6912),
    "Tesla_V100-PCIE-32GB": (14.0e12, 5120),
    "Tesla_T4": (8.1e12, 2560),
    "Tesla_P4": (5.5e12, 2560),
    "Tesla_P100-PCIE-16GB": (9.3e12, 3584),
}
REFERENCE = ("NVIDIA_A100-PCIE-40GB", "Tesla_V100-PCIE-32GB")
LIMITED = ("Tesla_T4", "Tesla_P4")


def p99_flops(gpu: str) -> float:
    """99th percentile of achieved fp32 FLOP/s over the linear and bmm calls of ``gpu``."""
    best = 0.0
    for op in ("linear", "bmm"):
        d = pd.read_csv(DATA / op / f"{gpu}.csv")
        flops = 2.0 * d.B * d.M * d.N * d.K  # both ops: B x M x N by N x K
        best = max(best, float((flops / (d.Latency * 1e-3)).quantile(0.99)))
    return best


def main() -> None:
    eff = {g: p99_flops(g) / SPEC[g][0] for g in SPEC}
    for g, e in eff.items():
        print(f"{g:<24} p99 achieved / spec fp32 peak = {e:.3f}")
    e_ref = sum(eff[g] for g in REFERENCE) / len(REFERENCE)
    print(f"reference efficiency (mean of {', '.join(REFERENCE)}): {e_ref:.3f}")
    for g in LIMITED:
        clock = p99_flops(g) / e_ref / (2 * SPEC[g][1])
        print(f"{g:<24} sustained clock estimate: {clock / 1e6:.0f} MHz")
    sustained = {g: p99_flops(g) / e_ref / (2 * SPEC[g][1]) for g in LIMITED}
    # power rule: T4 against the RTX 2080 Ti (TU102: 250 W, 68 SMs, 1545 MHz boost),
    # P4 against the GTX 1080 (GP104: 180 W, 20 SMs, 1733 MHz boost)
    t4_ratio, p4_ratio = (70 / 40) / (250 / 68), (75 / 20) / (180 / 20)
    for k, label in ((1 / 3, "k = 1/3"), (math.log(sustained["Tesla_T4"] / 1545e6) / math.log(t4_ratio), "k fitted on T4")):
        t4, p4 = 1545e6 * t4_ratio**k, 1733e6 * p4_ratio**k
        print(f"power rule {label} ({k:.2f}): T4 {t4 / 1e6:.0f} MHz ({t4 / sustained['Tesla_T4'] - 1:+.0%}), "
              f"P4 {p4 / 1e6:.0f} MHz ({p4 / sustained['Tesla_P4'] - 1:+.0%} against the kernel-data estimate)")


if __name__ == "__main__":
    main()
