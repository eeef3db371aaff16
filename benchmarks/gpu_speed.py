"""What the learned GPU backend adds to `annotate` time (resnet50 batch 32, GPT-2 seq 512), in one run.

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/gpu_speed.py

Each configuration is timed `--repeats` times after one warm-up call (parameter file loaded, trees
built); the best time is kept. Target (issue 11): learned <= 1.20 x the roofline default it replaces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fxenergy  # noqa: E402
from fxenergy.models import build_model  # noqa: E402


def best_of(fn, repeats: int) -> float:  # noqa: ANN001
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'model':<10}{'none s':>9}{'roofline s':>12}{'learned s':>11}{'learned/roofline':>18}{'learned/none':>14}")
    for name, kw in (("resnet50", {"batch_size": 32}), ("gpt2", {"batch_size": 1, "seq_len": 512})):
        b = build_model(name, **kw)

        def run(predictor, hardware="a100-80gb-pcie", b=b):  # noqa: ANN001, ANN202
            return lambda: fxenergy.annotate(b.model, b.args, example_kwargs=b.kwargs, hardware=hardware,
                                             predictor=predictor)

        none = best_of(run("none", None), args.repeats)
        roof = best_of(run("roofline"), args.repeats)
        learned = best_of(run("learned"), args.repeats)
        print(f"{name:<10}{none:>9.2f}{roof:>12.2f}{learned:>11.2f}{learned / roof:>18.2f}{learned / none:>14.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
