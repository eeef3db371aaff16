"""Counting accuracy, measured in one run: seed 000 Table 3, FlopCounterMode and fvcore agreement.

    uv run python benchmarks/count_accuracy.py

Prints (1) VGG11 MACs per layer type under the seed-000 convention next to the paper's Table 3,
(2) forward FLOPs against torch.utils.flop_counter.FlopCounterMode on meta tensors for nine models,
(3) forward+backward FLOPs in training mode against FlopCounterMode over forward + backward, and
(4) per-operator counts against fvcore's FlopCountAnalysis on resnet50 with real weights.
"""

from __future__ import annotations

import warnings

import torch
import torchvision

import fxenergy
from fxenergy.models import build_model
from fxenergy.testing import exported, flop_counter, tiny_llama

TABLE3 = {"Conv2d": 7_492_882_432, "Linear": 123_642_856, "MaxPool2d": 3_060_736, "ReLU": 3_717_120}


def load(name):
    if name == "llama (2 layers)":
        return tiny_llama(), (), {"input_ids": torch.empty(1, 128, dtype=torch.long, device="meta")}
    b = build_model(name)
    return b.model, b.args, b.kwargs


def main() -> None:
    print("## Seed 000 Table 3, VGG11, batch 1, 224x224, seed000 convention")
    with torch.device("meta"):
        vgg = torchvision.models.vgg11()
    r = fxenergy.annotate(vgg, torch.empty(1, 3, 224, 224, device="meta"), convention="seed000")
    ours: dict[str, int] = {}
    for row in r.rows:
        ours[row.module_type] = ours.get(row.module_type, 0) + row.macs
    print(f"{'layer type':<10} {'paper':>15} {'fxenergy':>15}  equal")
    for k, v in TABLE3.items():
        print(f"{k:<10} {v:>15,} {ours[k]:>15,}  {v == ours[k]}")

    print("\n## Forward FLOPs vs FlopCounterMode (meta tensors), batch 1, default convention")
    print(f"{'model':<20} {'fxenergy':>18} {'FlopCounterMode':>18} {'rel. diff':>10}")
    for name in ["resnet18", "resnet50", "vgg16", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "gpt2",
                 "bert-base-uncased", "llama (2 layers)"]:
        model, args, kwargs = load(name)
        ours_f = fxenergy.annotate(model, args, example_kwargs=kwargs).totals.flops
        decoder = name in ("gpt2", "llama (2 layers)")  # eager decoders call .item() on meta tensors
        ref = flop_counter(exported(model, args, kwargs) if decoder else model, args, kwargs)
        print(f"{name:<20} {ours_f:>18,} {ref:>18,} {ours_f / ref - 1:>+10.2e}")

    print("\n## Training: forward + backward FLOPs vs FlopCounterMode over forward + backward")
    print(f"{'model':<20} {'fwd+bwd':>18} {'FlopCounterMode':>18} {'rel. diff':>10} {'optimizer elem. FLOPs':>22}")
    for name in ("resnet18", "gpt2"):  # batch 1; resnet18 at 224x224, gpt2 at seq 128
        model, args, kwargs = load(name)
        res = fxenergy.annotate(model, args, example_kwargs=kwargs, mode="training")
        fb = sum(x.flops for x in res.rows if x.phase in ("forward", "backward"))
        opt = sum(x.elementwise_flops for x in res.rows if x.phase == "optimizer")
        model.train()
        ref = flop_counter(exported(model, args, kwargs) if name == "gpt2" else model, args, kwargs, training=True)
        print(f"{name:<20} {fb:>18,} {ref:>18,} {fb / ref - 1:>+10.2e} {opt:>22,}")

    print("\n## Per-operator agreement with fvcore FlopCountAnalysis, resnet50, real weights, batch 1")
    from fvcore.nn import FlopCountAnalysis

    m = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fv = FlopCountAnalysis(m, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).by_operator()
    res = fxenergy.annotate(m, x)
    by_type: dict[str, tuple[int, int]] = {}
    for row in res.rows:
        a, b = by_type.get(row.module_type, (0, 0))
        by_type[row.module_type] = (a + row.macs, b + row.elementwise_flops)
    pairs = [("conv", "Conv2d", 0), ("linear", "Linear", 0), ("batch_norm", "BatchNorm2d", 1),
             ("adaptive_avg_pool2d", "AdaptiveAvgPool2d", 1)]
    print(f"{'fvcore op':<22} {'fvcore':>15} {'fxenergy':>15} {'ratio':>6}  fxenergy column")
    for fv_name, mtype, col in pairs:
        ours_v = by_type.get(mtype, (0, 0))[col]
        theirs = fv.get(fv_name, 0)
        print(f"{fv_name:<22} {theirs:>15,} {ours_v:>15,} {ours_v / theirs:>6.2f}  {mtype} {'macs' if col == 0 else 'elementwise_flops'}")


if __name__ == "__main__":
    main()
