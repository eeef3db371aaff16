"""In-place vs out-of-place element-wise ops on this CPU (issue 12, session cpu11), microseconds and GB/s.

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_inplace_micro.py [OP ...]

Part 1, per op (relu, hardsigmoid, hardswish, add) at the quick calibration's sizes (2^10..2^22 elements) and at
sizes of mobile networks' activations: out of place with cold inputs (copies cycled over 64 MiB, as the
calibration's ``elementwise`` rows), out of place hot (one input), in place cold, in place hot (the calibration's
``inplace`` rows). Part 2: ``relu_`` / ``hardswish_`` right after a ``batch_norm`` that wrote their input, as a
network runs them (time of the pair minus the batch norm's). GB/s counts the bytes fxenergy counts (read + write).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

COLD_BYTES = 64 * 2**20
SHAPES = [(2**10,), (2**16,), (2**20,), (2**22,), (16, 16, 64, 64), (16, 72, 32, 32), (16, 240, 16, 16),
          (8, 96, 48, 48), (16, 960, 4, 4)]
OPS: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor], int]] = {
    "relu": (F.relu, torch.relu_, 1),
    "hardsigmoid": (F.hardsigmoid, lambda x: F.hardsigmoid(x, inplace=True), 1),
    "hardswish": (F.hardswish, lambda x: F.hardswish(x, inplace=True), 1),
    "add": (torch.add, lambda x, y: x.add_(y), 2),
}


def median_s(fn: Callable[..., object], sets: list[list[torch.Tensor]], target_s: float = 0.02, reps: int = 7) -> float:
    """Median over ``reps`` of the mean seconds per call, calls cycling through ``sets``."""
    turn = itertools.cycle(sets)
    for _ in range(3):
        fn(*next(turn))
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*next(turn))
        dt = time.perf_counter() - t0
        if dt > target_s / 4:
            break
        n *= 4
    n = max(1, int(n * target_s / dt))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*next(turn))
        ts.append((time.perf_counter() - t0) / n)
    return sorted(ts)[reps // 2]


def input_sets(shapes: list[tuple[int, ...]], cold: bool) -> list[list[torch.Tensor]]:
    nbytes = sum(4 * torch.Size(s).numel() for s in shapes)
    k = min(64, max(1, -(-COLD_BYTES // nbytes))) if cold else 1
    return [[torch.rand(s) + 0.5 for s in shapes] for _ in range(k)]


def part1(only: list[str]) -> None:
    print(f"{'op':<12}{'shape':<20}{'MiB':>6} {'out cold':>9} {'out hot':>9} {'in cold':>9} {'in hot':>9}  (us), then GB/s")
    for name, (oop, inp, k) in OPS.items():
        if only and name not in only:
            continue
        for s in SHAPES:
            r = {}
            for cold in (True, False):
                sets = input_sets([s] * k, cold)
                r["out", cold] = median_s(oop, sets)
                if name == "hardswish":  # x >= 3 is a fixed point of hardswish: repeated calls stay normal floats
                    sets = [[x.clamp_(min=3.0) for x in st] for st in sets]
                r["in", cold] = median_s(inp, sets)
            nb = 4 * torch.Size(s).numel() * (k + 1)
            keys = (("out", True), ("out", False), ("in", True), ("in", False))
            print(f"{name:<12}{str(s):<20}{4 * torch.Size(s).numel() / 2**20:6.2f} "
                  + " ".join(f"{r[key] * 1e6:9.1f}" for key in keys)
                  + "   " + " ".join(f"{nb / r[key] / 1e9:5.1f}" for key in keys), flush=True)


def part2() -> None:
    for shape in SHAPES[4:] + [(8, 32, 96, 96)]:
        c = shape[1]
        xs = [torch.rand(shape) + 0.5 for _ in range(8)]
        mean, var, w, b = (torch.rand(c) + 0.5 for _ in range(4))
        counter = itertools.count()

        def bn(xs: list[torch.Tensor] = xs, mean: torch.Tensor = mean, var: torch.Tensor = var, w: torch.Tensor = w,
               b: torch.Tensor = b, counter: itertools.count = counter) -> torch.Tensor:
            return F.batch_norm(xs[next(counter) % 8], mean, var, w, b, training=False)

        t_bn = median_s(bn, [[]])
        t_relu = median_s(lambda bn=bn: bn().relu_(), [[]]) - t_bn
        t_hsw = median_s(lambda bn=bn: F.hardswish(bn(), inplace=True), [[]]) - t_bn
        hot = torch.rand(shape) + 0.5
        t_hot = median_s(torch.relu_, [[hot]])
        nb = 2 * 4 * hot.numel()
        print(f"{str(shape):<20} {nb / 2**21:5.2f} MiB  bn {t_bn * 1e6:7.1f} us  relu_ after bn {t_relu * 1e6:7.1f} "
              f"({nb / t_relu / 1e9:5.1f} GB/s)  hardswish_ after bn {t_hsw * 1e6:7.1f} ({nb / t_hsw / 1e9:5.1f})  "
              f"relu_ hot loop {t_hot * 1e6:7.1f} ({nb / t_hot / 1e9:5.1f})", flush=True)


def main(argv: list[str]) -> int:
    torch.manual_seed(0)
    with torch.inference_mode():
        part1(argv)
        part2()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
