"""Batch-1 1x1 convolutions at small spatial sizes: timed as the calibration times them (inputs and weights cold, from a
rotation of copies spanning 2x the L3) and hot (one input set), in one process (issue 12, session cpu20; time only).

    uv run python benchmarks/cpu_pointwise_probe.py [--rounds 3]

Shapes, fixed before timing: the quick calibration's batch-1 small-spatial 1x1 rows, and the 1x1 layers of three
development networks (RegNet-X-400MF's 400 -> 400 at 7 px and 160 -> 160 at 14 px, MNASNet 0.5's and EfficientNet-B1's
expand / project layers at 7 and 14 px). Takes the machine lock (benchmarks/cpu_latency.py's ``machine_lock``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

from fxenergy.calibrate.benches import Bench  # noqa: E402
from fxenergy.calibrate.timing import measure  # noqa: E402

SHAPES = (  # (cin, cout, side), batch 1
    (960, 160, 7), (320, 1280, 7), (2048, 512, 7), (240, 40, 28),  # calibration rows
    (400, 400, 7), (160, 160, 14),  # regnet_x_400mf
    (96, 576, 7), (576, 96, 7), (160, 1280, 7),  # mnasnet0_5
    (192, 1152, 7), (1152, 192, 7), (112, 672, 14), (672, 112, 14),  # efficientnet_b1
)
COLD_BYTES = 64 << 20
"""Twice this VM's 32 MiB L3, as ``fxenergy calibrate`` rotates its inputs (run.py: ``2 x _llc_bytes``)."""


def bench(cin: int, cout: int, side: int, hot: bool) -> Bench:
    return Bench("convolution", "conv2d pointwise k1", F.conv2d, ((1, cin, side, side), (cout, cin, 1, 1), (cout,)),
                 {"stride": 1, "padding": 0, "groups": 1}, hot=hot)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    res: dict[tuple, list[float]] = {}
    with cl.machine_lock(cl.LOCK), cl.CpuWatch() as watch:
        for _ in range(args.rounds):
            for hot in (False, True):
                ms = measure([bench(*s, hot) for s in SHAPES], target_s=0.004, repeats=5, cold_bytes=COLD_BYTES)
                for s, m in zip(SHAPES, ms):
                    res.setdefault((*s, hot), []).append(m.median_s)
    print(f"others used {watch.share or 0:.0%} of the CPUs; medians over {args.rounds} rounds")
    print("| cin -> cout @ side | MFLOP | weights KiB | cold us | hot us | cold/hot | cold GFLOP/s | hot GFLOP/s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for cin, cout, side in SHAPES:
        c, h = (statistics.median(res[(cin, cout, side, x)]) for x in (False, True))
        f = 2 * cin * cout * side * side
        print(f"| {cin} -> {cout} @ {side} | {f / 1e6:.1f} | {4 * cin * cout / 1024:.0f} | {c * 1e6:.0f} | "
              f"{h * 1e6:.0f} | {c / h:.2f} | {f / c / 1e9:.0f} | {f / h / 1e9:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
