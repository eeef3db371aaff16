"""Compare two GPT configurations before training either (seed 004, §5.2).

    uv run python examples/compare_gpt_configs.py

Model A: 6 layers, d_model 512, 8 heads; Model B: 12 layers, d_model 768, 12 heads. Both are
predicted for one forward pass of a batch of 64 sequences of 320 tokens on an A100 80GB PCIe with
fxenergy's default GPU backend (the learned per-op model). Seed 004's published A100 HEF parameters
(`predictor="hef", params="hef-seed004-a100"`) are refused here: their energy coefficients put the
mean board power at ~460 W, above the card's 300 W limit, and fxenergy does not print a figure that
breaks a physical bound. Nothing is computed and no weights are allocated: the models live on the
meta device.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

import fxenergy

BATCH, SEQ = 64, 320
CONFIGS = {
    "A (6 layers, d 512, 8 heads)": dict(n_layer=6, n_embd=512, n_head=8),
    "B (12 layers, d 768, 12 heads)": dict(n_layer=12, n_embd=768, n_head=12),
}


def predict(name: str, **shape: int) -> fxenergy.Result:
    config = GPT2Config(n_positions=SEQ, use_cache=False, **shape)
    with torch.device("meta"):
        model = GPT2LMHeadModel(config).eval()
    tokens = torch.empty(BATCH, SEQ, dtype=torch.long, device="meta")
    return fxenergy.annotate(model, example_kwargs={"input_ids": tokens}, hardware="a100-80gb-pcie",
                             name=name)  # the default backend for a GPU: the learned per-op model


def main() -> None:
    results = {name: predict(name, **shape) for name, shape in CONFIGS.items()}
    for name, r in results.items():
        t = r.totals
        print(f"Model {name}: {t.energy_j:.3f} J per forward, {t.flops / 1e12:.2f} TFLOPs, "
              f"{t.duration_s * 1e3:.1f} ms predicted")
    cheaper = min(results, key=lambda n: results[n].totals.energy_j)
    costly = max(results, key=lambda n: results[n].totals.energy_j)
    ratio = results[costly].totals.energy_j / results[cheaper].totals.energy_j
    print(f"cheaper: Model {cheaper} ({ratio:.2f}x less energy than Model {costly})")


if __name__ == "__main__":
    main()
