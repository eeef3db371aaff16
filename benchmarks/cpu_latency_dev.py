"""CPU latency on a DEVELOPMENT set: models and batches that benchmarks/cpu_latency.py does not time.

    uv run python benchmarks/cpu_latency_dev.py --calibration my-cpu.json [--timings dev.json] [more.json ...]

Use it to check a change to the CPU duration model or the calibration on whole models without looking at
the benchmark's own cases (its cases are the judge; this set is for development). Timings are taken once
under the machine lock and kept in ``--timings`` (reused when the file exists), so several calibration
files can be compared on the same measurements; each is printed per case with its median / mean / worst
APE and Spearman. Same measurement method as cpu_latency.py (random weights, eval, no_grad, median of
at least 3 runs, re-timed when other processes were busy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

DEV: tuple[tuple[str, int, int], ...] = (
    ("resnet34", 8, 128), ("vgg13", 2, 160), ("regnet_x_400mf", 8, 160), ("shufflenet_v2_x0_5", 16, 160),
    ("mnasnet0_5", 4, 224), ("efficientnet_b1", 4, 192), ("vit_b_32", 4, 224), ("resnet101", 1, 224),
    ("densenet169", 2, 160), ("resnext101_32x8d", 1, 160), ("mobilenet_v3_small", 8, 160), ("convnext_small", 1, 160),
    ("regnet_y_800mf", 16, 128), ("wide_resnet101_2", 2, 128), ("alexnet", 64, 128), ("resnet152", 4, 96),
    # batch 1, where the benchmark's worst cases were (small mobile networks too fast, VGG's GEMV head too slow)
    ("mobilenet_v2", 1, 224), ("mnasnet0_5", 1, 224), ("efficientnet_b1", 1, 224), ("regnet_x_400mf", 1, 224),
    ("vgg13", 1, 224), ("shufflenet_v2_x0_5", 1, 224), ("mobilenet_v3_large", 1, 224), ("gpt2", 1, 64),
    # grouped convolutions of group width 8..64 (session cpu7): RegNetX/Y and ResNeXt were priced too slow
    ("regnet_x_800mf", 4, 224), ("regnet_x_3_2gf", 2, 160), ("regnet_y_1_6gf", 4, 160), ("resnext50_32x4d", 4, 128),
    ("resnext101_32x8d", 1, 128), ("regnet_y_400mf", 8, 128),
)
"""Development cases: no (model, batch, size) here is a case of cpu_latency.CASES, and 17 of the 24 cases' models
are not benchmark models at all (alexnet, mobilenet_v3_small, mobilenet_v2, mobilenet_v3_large and gpt2 at other
batches and sizes)."""
DEV_TRANSFORMERS: tuple[tuple[str, int, int], ...] = (
    ("vit_b_32", 2, 224), ("vit_b_16", 2, 224), ("swin_s", 1, 224), ("swin_v2_t", 1, 224), ("swin_t", 2, 224),
    ("maxvit_t", 2, 224), ("convnext_tiny", 2, 224), ("gpt2", 1, 256), ("bert-base-uncased", 1, 64),
    ("distilbert-base-uncased", 4, 128), ("roberta-base", 2, 64), ("wide_resnet101_2", 1, 128), ("alexnet", 2, 224),
)
"""Development cases of the transformer-style and large-weight models (session cpu6, `--set transformers`): attention,
window partitions, layer norms and big linears at batch 1-4; none is a case of cpu_latency.CASES."""
DEV_GEMM: tuple[tuple[str, int, int], ...] = (
    ("wide_resnet50_2", 1, 192), ("wide_resnet101_2", 1, 224), ("wide_resnet50_2", 2, 128), ("densenet161", 2, 128),
    ("densenet169", 4, 128), ("bert-base-uncased", 2, 128), ("distilbert-base-uncased", 8, 64),
    ("roberta-base", 4, 64), ("gpt2", 2, 128), ("vgg11", 8, 128), ("alexnet", 8, 224),
)
"""Development cases of weight-heavy layers (session cpu8, `--set gemm`): wide ResNets at batch 1-2 (1024 -> 1024 3x3
convolutions with 36 MiB of weights), DenseNets above batch 1, transformer encoders at 256-512 tokens and the FC heads
of VGG/AlexNet above batch 1; none is a case of cpu_latency.CASES."""
DEV_BATCH: tuple[tuple[str, int, int], ...] = (
    ("resnet34", 2, 224), ("resnet34", 32, 96), ("resnet101", 8, 128), ("resnext101_64x4d", 2, 160),
    ("vgg13_bn", 8, 128), ("vgg19", 2, 160), ("squeezenet1_0", 8, 224), ("squeezenet1_0", 32, 128),
    ("densenet201", 8, 128), ("efficientnet_b2", 2, 224), ("efficientnet_b2", 8, 160), ("efficientnet_b1", 32, 128),
    ("regnet_y_3_2gf", 8, 160), ("regnet_y_800mf", 32, 128), ("regnet_x_800mf", 64, 96), ("convnext_small", 8, 128),
    ("shufflenet_v2_x1_5", 32, 160), ("shufflenet_v2_x2_0", 8, 224), ("shufflenet_v2_x0_5", 64, 160),
    ("mnasnet0_75", 32, 160), ("mnasnet1_3", 8, 224), ("mnasnet0_5", 64, 128), ("mobilenet_v2", 32, 128),
    ("mobilenet_v3_large", 64, 96), ("mobilenet_v3_small", 64, 160), ("vit_b_32", 8, 224), ("vit_l_32", 2, 224),
    ("swin_s", 8, 128), ("bert-large-uncased", 2, 128), ("gpt2-medium", 8, 64), ("distilbert-base-uncased", 32, 64),
    ("t5-base", 2, 64),
)
"""Development cases at batch sizes the benchmark never times (2, 8, 32, 64; it times 1, 4 and 16) on models it
mostly does not time either (session cpu13, `--set batch`): ResNets, VGG-BN, SqueezeNet 1.0, DenseNet-201,
EfficientNet B1/B2, RegNets, ConvNeXt-S, ShuffleNet x0.5-x2.0, MNASNet 0.5-1.3, ViT-L/32, Swin-S, BERT-large,
GPT-2 medium and T5-base; none is a case of cpu_latency.CASES."""
DEV_SWEEP: tuple[tuple[str, int, int], ...] = tuple(
    (name, b, side) for name, side, batches in (
        ("mnasnet0_5", 128, (2, 8, 32, 64)), ("mobilenet_v3_large", 96, (2, 8, 32, 64)),
        ("shufflenet_v2_x1_5", 128, (2, 8, 32, 64)), ("regnet_y_800mf", 128, (2, 8, 32)),
        ("squeezenet1_0", 128, (2, 8, 32)), ("resnet34", 96, (2, 8, 32)), ("efficientnet_b2", 128, (2, 8, 32)))
    for b in batches)
"""The same development models at batch 2, 8, 32 (and 64 for the small ones), one image side each (session cpu13,
`--set sweep`): whether the error drifts with batch size within a model, apart from its family."""
SETS = {"default": DEV, "transformers": DEV_TRANSFORMERS, "gemm": DEV_GEMM, "batch": DEV_BATCH, "sweep": DEV_SWEEP,
        "all": DEV + DEV_TRANSFORMERS + DEV_GEMM}
assert not set(DEV + DEV_TRANSFORMERS + DEV_GEMM + DEV_BATCH + DEV_SWEEP) & set(cl.CASES)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("calibration", nargs="+", help="calibration files from `fxenergy calibrate` to compare")
    p.add_argument("--timings", default=str(Path(tempfile.gettempdir()) / "fxenergy-cpu_latency_dev.timings.json"),
                   help="timings file (made if missing; delete it to time again)")
    p.add_argument("--no-lock", action="store_true")
    p.add_argument("--fresh-process", action="store_true", help="time each case in its own interpreter")
    p.add_argument("--set", choices=sorted(SETS), default="default", help="which development cases to time")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    path = Path(args.timings)
    if path.exists():
        rows = json.loads(path.read_text())
    else:
        gen, rows = torch.Generator().manual_seed(0), []
        with cl.machine_lock(None if args.no_lock else cl.LOCK):
            for name, b, s in SETS[args.set]:
                m, n, share, ctr = (cl.time_case_fresh(name, b, s, 5, 1.5) if args.fresh_process
                                    else cl.time_case(name, b, s, 5, 1.5, gen))
                print(f"  {name:<22} b{b:<3} {s:4d}: measured {m * 1e3:8.2f} ms ({n} runs, others {share or 0:.0%}, "
                      f"faults {ctr['faults_mib_per_pass']:.1f} MiB/pass, steal {ctr['steal_share'] or 0:.1%}, "
                      f"canary {ctr.get('canary_gflops', float('nan')):.0f} GFLOP/s)", flush=True)
                rows.append([name, b, s, m, share, ctr])  # the counters (faults, canary) after the four fields
        path.write_text(json.dumps(rows))
    cl.predict_timed([(r[0], r[1], r[2], r[3]) for r in rows], args.calibration, width=22)
    return 0


if __name__ == "__main__":
    sys.exit(main())
