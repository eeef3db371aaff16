"""The transformer table of benchmarks/gpu_models.py (eager attention) with two learned parameter files side by side.

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_transformer_ab.py OLD.json NEW.json [MODEL]

Each case is traced once and predicted with the roofline and with both files; per GPU it prints the roofline time
and learned/roofline for OLD -> NEW, then the mean ratio per GPU over the cases run. MODEL (one name of
gpu_models.TRANSFORMERS) runs one model only, so that each run holds the CPU lock for a minute or two. No
measurement of these cases is in the shared data: this says how a change moves the table, not whether it is right.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_models import IMPLIED, transformer_analyses  # noqa: E402

from fxenergy.analysis import predict  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402


def total_s(analysis, device: str, predictor: str, params: str | None = None) -> float:  # noqa: ANN001
    return float(sum(predict(analysis, resolve(device, predictor, params)).duration_s.values()))


def main(argv: list[str]) -> int:
    old, new = argv[0], argv[1]
    only = argv[2] if len(argv) > 2 else None
    ratios: dict[str, tuple[list[float], list[float]]] = {d: ([], []) for d in IMPLIED}
    print(f"{'model':<12}{'b':>3}{'seq':>6}" + "".join(f"{d:>24}" for d in IMPLIED))
    for name, batch, seq, a in transformer_analyses(only):
        cells = []
        for d in IMPLIED:
            roof = total_s(a, d, "roofline")
            o, n = total_s(a, d, "learned", old) / roof, total_s(a, d, "learned", new) / roof
            ratios[d][0].append(o)
            ratios[d][1].append(n)
            cells.append(f"{roof * 1e3:8.1f}ms x{o:4.2f}->{n:4.2f}")
        print(f"{name:<12}{batch:>3}{seq:>6}" + "".join(f"{c:>24}" for c in cells), flush=True)
    print("mean learned/roofline, OLD -> NEW:")
    for d, (o, n) in ratios.items():
        if o:
            print(f"  {d:<16} {np.mean(o):.3f} -> {np.mean(n):.3f} ({len(o)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
