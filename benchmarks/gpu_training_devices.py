"""Predicted SGD training steps of the 18 A30 rows' models (batch 32, their image sizes) on several GPUs.

    uv run python benchmarks/gpu_training_devices.py                         # a30 and rtx-2080-ti, ~2 min
    uv run python benchmarks/gpu_training_devices.py --devices a30 t4 --optimizer sgd-momentum

A sanity table, not a validation: gpu-operators-nicolai measured whole training steps on the A30 only
(`operations_A30_train`); no whole-model measurement of the RTX 2080 Ti (or any other GPU) exists in the shared
data. Learned backend, shipped JSON. Uses only the public API, so the same file runs on an older checkout
(copy it there) to print that checkout's predictions.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.analysis import analyse, predict  # noqa: E402
from fxenergy.models import build_model  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402


def model_rows(data: Path) -> list[tuple[str, int]]:
    """(torchvision name, image size) of the whole-model rows of ``operations_A30_train``, in log order."""
    raw = (data / "gpu-operators-nicolai" / "raw" / "operations_A30_train").read_text().splitlines()
    out = []
    for line in raw:
        m = re.match(r"^([a-z0-9_]+) \((32, 3, \d+, \d+)\)$", line)
        if m:
            out.append((m.group(1), int(ast.literal_eval("(" + m.group(2) + ")")[2])))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", nargs="+", default=["a30", "rtx-2080-ti"])
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = ap.parse_args()
    print(f"predicted training step (batch 32, optimizer {args.optimizer}, learned backend), ms and J per step")
    print(f"{'model':<22}{'img':>5}" + "".join(f"{d + ' ms':>16}{d + ' J':>16}" for d in args.devices))
    for name, size in model_rows(args.data):
        b = build_model(name, batch_size=32, image_size=size)
        a = analyse(b.model, b.args, mode="training", optimizer=args.optimizer, name=name)
        cells = []
        for dev in args.devices:
            p = predict(a, resolve(dev, "learned"))
            cells += [f"{p.total_duration_s * 1e3:>16.2f}", f"{p.energy_j:>16.3f}"]
        print(f"{name:<22}{size:>5}" + "".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
