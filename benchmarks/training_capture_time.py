"""Training capture time per method (issue 12): ``record`` against symbolic_trace + the make_fx joint graph.

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/training_capture_time.py \
        resnet18,mobilenet_v3_small,densenet121,vit_b_16,convnext_tiny record,symbolic_trace
"""

from __future__ import annotations

import sys
import time

import torch

from fxenergy.capture import capture
from fxenergy.models import build_model


def main(names: str, methods: str) -> None:
    torch.set_num_threads(1)
    for name in names.split(","):
        b = build_model(name, batch_size=1, image_size=224)
        for method in methods.split(","):
            t = time.perf_counter()
            c = capture(b.model, b.args, b.kwargs, mode="training", method=method)
            print(f"{name} {method} {time.perf_counter() - t:.2f} s, {len(c.graph_module.graph.nodes)} nodes", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
