"""annotate() time against fvcore's FlopCountAnalysis, measured in one run, printed as ratios.

    uv run python benchmarks/speed_vs_fvcore.py [--repeats 5]

Both get the same model with real weights and the same real input (what a user has in hand).
fvcore traces with torch.jit and runs the model for real; annotate copies it to meta and computes
nothing. Times are medians of --repeats runs after one warm-up run each.
"""

from __future__ import annotations

import argparse
import warnings

import torch
import torchvision
import transformers
from _timing import median_time
from fvcore.nn import FlopCountAnalysis

import fxenergy


def cases():
    yield "resnet50", torchvision.models.resnet50().eval(), (torch.randn(1, 3, 224, 224),), {}
    cfg = transformers.GPT2Config(use_cache=False)
    gpt2 = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").eval()
    yield "gpt2 (seq 128)", Logits(gpt2), (torch.randint(0, 50257, (1, 128)),), {}


class Logits(torch.nn.Module):
    """Return a plain tensor: torch.jit.trace (fvcore) cannot trace transformers' output objects."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids).logits


def fvcore_total(model, args) -> int:
    fca = FlopCountAnalysis(model, args).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return fca.total()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {a.repeats}")
    print(f"{'model':<16} {'annotate s':>11} {'fvcore s':>10} {'fvcore/annotate':>16}  {'our MACs':>16} {'fvcore count':>16}")
    for name, model, args, kwargs in cases():
        t_ours = median_time(lambda m=model, x=args, kw=kwargs: fxenergy.annotate(m, x, example_kwargs=kw), a.repeats)
        ours = fxenergy.annotate(model, args, example_kwargs=kwargs).totals.macs
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                t_fv = median_time(lambda m=model, x=args: fvcore_total(m, x), a.repeats)
                fv = fvcore_total(model, args)
            print(f"{name:<16} {t_ours:>11.3f} {t_fv:>10.3f} {t_fv / t_ours:>15.1f}x  {ours:>16,} {fv:>16,}")
        except Exception as e:  # noqa: BLE001 - report, do not hide
            print(f"{name:<16} {t_ours:>11.3f} {'failed':>10} {'-':>16}  {ours:>16,}  fvcore: {type(e).__name__}: {str(e)[:80]}")


if __name__ == "__main__":
    main()
