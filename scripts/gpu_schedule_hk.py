"""Diagnostics of the host/GPU schedule on the 18 A30 training steps (docs/validation.md, gpu11; no GPU used).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_schedule_hk.py FLOORS.json

FLOORS.json: a learned-gpu file with setting floors (``scripts/fit_gpu_perf.py --setting-floors -o FLOORS.json``).
Per model: the schedule's items (calls in graph order), their host cost H = Σ floors and GPU time K = Σ kernels
(forward pass and training step), measured / K, measured / H and Σ max(h, k) / measured. Then an exploratory
variant: every host cost scaled by α (a training-mode host slower than the forward module loops the floors come
from), α chosen leave-one-model-out on the other 17 rows (least mean |log(pred / meas)|), both schedules.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_models import a30_model_rows  # noqa: E402

import fxenergy.perf.model as pm  # noqa: E402
from fxenergy.analysis import GraphView, analyse  # noqa: E402
from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.models import build_model  # noqa: E402

ALPHAS = np.round(np.arange(1.0, 3.01, 0.1), 2)


def items(analysis, pp) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """(host s, kernel s) of the schedule's items, as LearnedGPUModel hands them to gpu_timeline_s."""
    seen: dict[str, np.ndarray] = {}
    orig = pm.gpu_timeline_s

    def spy(h: np.ndarray, k: np.ndarray, mode: str = "loop") -> np.ndarray:
        seen["h"], seen["k"] = np.array(h), np.array(k)
        return orig(h, k, mode)

    pm.gpu_timeline_s = spy
    try:
        pm.LearnedGPUModel(load_profile("a30"), pp, schedule="pass").annotate(GraphView(analysis.graph_module))
    finally:
        pm.gpu_timeline_s = orig
    return seen["h"], seen["k"]


def main(argv: list[str]) -> int:
    fl = json.loads(Path(argv[0]).read_text())["params"]["dispatch_floors"]
    pp = replace(pm.load_perf_params(), dispatch_floors={d: {f: float(v) for f, v in x.items()} for d, x in fl.items()})
    rows = a30_model_rows()
    hk = []
    print("setting floors, A30, batch 32: H = Σ host, K = Σ kernels (ms)")
    for name, size, t, _e in rows:
        b = build_model(name, batch_size=32, image_size=size)
        hi, ki = items(analyse(b.model, b.args, name=name), pp)
        h, k = items(analyse(b.model, b.args, mode="training", optimizer="sgd", name=name), pp)
        hk.append((h, k))
        print(f"{name:<20}{size:>4} meas {t * 1e3:7.2f}  items {len(h):5d}  H {h.sum() * 1e3:6.2f} (fwd {hi.sum() * 1e3:5.2f})"
              f"  K {k.sum() * 1e3:7.2f} (fwd {ki.sum() * 1e3:6.2f})  meas/K {t / k.sum():5.2f}  meas/H {t / h.sum():5.2f}"
              f"  sum-max/meas {np.maximum(h, k).sum() / t:5.2f}  calls < 5 us {int((k < 5e-6).sum()):4d} ({k[k < 5e-6].sum() * 1e3:.2f} ms)")
    meas = np.array([r[2] for r in rows])
    for mode in ("loop", "pass"):
        pred = np.array([[pm.gpu_timeline_s(h * a, k, mode).sum() for a in ALPHAS] for h, k in hk])
        loss = np.abs(np.log(pred / meas[:, None]))
        errs, picks = [], []
        for i in range(len(rows)):
            j = int(np.argmin(loss[np.arange(len(rows)) != i].mean(axis=0)))
            errs.append(abs(pred[i, j] / meas[i] - 1) * 100)
            picks.append(float(ALPHAS[j]))
        e = np.array(errs)
        print(f"{mode}: host x alpha, alpha leave-one-model-out (picked {min(picks)}-{max(picks)}): time APE median "
              f"{np.median(e):.1f} mean {e.mean():.1f} worst {e.max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
