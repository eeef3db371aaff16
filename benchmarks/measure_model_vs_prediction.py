"""Predicted against measured time per layer of a real model run here (`fxenergy measure`), summarised.

    uv run python benchmarks/measure_model_vs_prediction.py resnet18 --batch-size 8 [--hardware cpu.json]
    uv run python benchmarks/measure_model_vs_prediction.py --from-markdown run.md   # summarise a saved run

Prints, over the layers that have both a measured and a predicted time: the absolute percentage error
of the prediction (median, mean, worst), the same per layer type, and the whole model (per-layer
totals and the plain run). Run it under the CPU lock on a shared machine: timings of a loaded machine
are inflated.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_UNITS = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def _seconds(text: str) -> float | None:
    m = re.fullmatch(r"\**([0-9.]+) (s|ms|µs|us|ns)\**", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def from_markdown(path: str) -> tuple[list[tuple[str, str, float | None, float | None]], float | None]:
    rows, plain = [], None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("- **whole-model run**:"):
            plain = _seconds(line.split(":", 1)[1].split(" per run")[0])
        if line.startswith("| ") and not line.startswith("| Layer") and not line.startswith("| **Total"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.append((cells[0], cells[1], _seconds(cells[2]), _seconds(cells[3])))
    return rows, plain


def measured(args: argparse.Namespace) -> tuple[list[tuple[str, str, float | None, float | None]], float | None]:
    from fxenergy.measure.model import measure_model

    mm = measure_model(args.model, batch_size=args.batch_size, hardware=args.hardware, window_s=args.window)
    return [(x.key, x.module_type, x.measured_s, x.predicted_s) for x in mm.layers], mm.run.duration_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="resnet18")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--hardware", default="local")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--from-markdown", default=None)
    a = ap.parse_args()
    rows, plain = from_markdown(a.from_markdown) if a.from_markdown else measured(a)
    both = [(k, t, m, p) for k, t, m, p in rows if m and p is not None]
    ape = [abs(p - m) / m for _, _, m, p in both]
    print(f"{len(both)} layers with a measured and a predicted time (of {len(rows)} rows)")
    print(f"per layer: APE median {statistics.median(ape):.1%}, mean {statistics.mean(ape):.1%}, worst {max(ape):.1%}"
          f" ({both[ape.index(max(ape))][0]})")
    for t in sorted({t for _, t, _, _ in both}):
        e = [abs(p - m) / m for _, tt, m, p in both if tt == t]
        r = [p / m for _, tt, m, p in both if tt == t]
        print(f"  {t or '(functional)':<18} n={len(e):>2}  APE median {statistics.median(e):6.1%}  worst {max(e):6.1%}"
              f"  predicted/measured median {statistics.median(r):.2f}")
    tm = sum(m for _, _, m, _ in rows if m)
    tp = sum(p for _, _, _, p in rows if p is not None)
    print(f"total: measured per-layer sum {tm:.4g} s, plain run {plain:.4g} s, predicted {tp:.4g} s "
          f"(error {abs(tp - plain) / plain:.1%} against the plain run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
