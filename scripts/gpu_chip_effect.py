"""Whole-transformer effect of the learned model's per-chip correction (learned backend, fp32 inference).

    flock /tmp/fxenergy-cpu.lock uv run python scripts/gpu_chip_effect.py      # ~3 min

Predicted total duration with and without ``chip_correction`` of learned-gpu.json, on GPUs whose die is
in the kernel data (V100, T4, A100) and two that are not (H100, L4). Not a validation: the shared data
has no end-to-end measurement of these models.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fxenergy.analysis import GraphView, analyse  # noqa: E402
from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.models import build_model  # noqa: E402
from fxenergy.perf.model import LearnedGPUModel, load_perf_params  # noqa: E402
from fxenergy.records import DURATION  # noqa: E402


def main() -> int:
    params = load_perf_params()
    bare = dataclasses.replace(params, chip_correction={})
    for name, batch, seq in (("bert-large-uncased", 16, 512), ("gpt2-large", 4, 1024)):
        b = build_model(name, batch_size=batch, seq_len=seq)
        gm = analyse(b.model, b.args, example_kwargs=b.kwargs).graph_module
        for dev in ("v100-sxm2-32gb", "t4", "a100-80gb-pcie", "h100-sxm", "l4"):
            tot = []
            for p in (bare, params):
                view = GraphView(gm)
                LearnedGPUModel(load_profile(dev), p).annotate(view)
                tot.append(sum(d.duration_s for d in view.records(DURATION).values()))
            print(f"{name} b{batch} s{seq} {dev:<16} without {tot[0] * 1e3:8.1f} ms  with chip correction "
                  f"{tot[1] * 1e3:8.1f} ms  ({tot[1] / tot[0] - 1:+.1%})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
