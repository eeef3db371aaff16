"""Annotate a torchvision model and print its ten most expensive layers.

    uv run python examples/top_layers.py [MODEL]

Layers are ranked by energy when a predictor is selected, otherwise by arithmetic (FLOPs plus
elementwise FLOPs). Nothing is computed: the model runs on meta tensors.
"""

from __future__ import annotations

import sys

import torch
import torchvision

import fxenergy


def main(name: str = "resnet50") -> None:
    with torch.device("meta"):
        model = getattr(torchvision.models, name)()
    result = fxenergy.annotate(model, torch.empty(1, 3, 224, 224, device="meta"), name=name)
    total = result.totals.flops + result.totals.elementwise_flops

    def weight(g: fxenergy.result.Group) -> float:
        return g.totals.energy_j if g.totals.energy_j is not None else g.totals.flops + g.totals.elementwise_flops

    print(f"{name}: {result.totals.macs / 1e9:.3f} GMACs, {result.totals.bytes_read / 1e6:.1f} MB read")
    for g in sorted(result.group("layer"), key=weight, reverse=True)[:10]:
        share = (g.totals.flops + g.totals.elementwise_flops) / total
        print(f"  {g.key:<28} {g.module_type:<12} {g.totals.flops / 1e6:>10.1f} MFLOPs  {share:6.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
