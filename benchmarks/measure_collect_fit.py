"""How well a layerwise model fitted on YOUR `fxenergy collect` table predicts held-out layers.

    uv run python benchmarks/measure_collect_fit.py TABLE.csv [--target energy_j|duration_s]

The test set is fixed before fitting: configurations with ``index % 5 == 0`` (a fifth, every layer
kind alike). The layerwise backend (seed 000's regressors, chosen per type by 5-fold CV on the rest)
is fitted on the other rows and predicts the held-out ones; a baseline predicts ``target ∝ MACs``
with one ratio per type (the median ratio of the training rows). Printed per layer type and over
all: R² (seed 000's measure) and the absolute percentage error's median, mean and worst.
Target: ``energy_j`` where every row has it, else ``duration_s`` (time only: no meter readable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.fitting import read_table  # noqa: E402
from fxenergy.predictors.layerwise import FEATURES, LayerwisePredictor  # noqa: E402


def r2(y: np.ndarray, p: np.ndarray) -> float:
    return float(1 - ((y - p) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300))


def ape(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.abs(p - y) / y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--target", choices=("energy_j", "duration_s"), default=None)
    a = ap.parse_args()
    probe = read_table(a.table, "duration_s")
    target = a.target or ("energy_j" if all(r.get("energy_j", "") != "" for r in probe) else "duration_s")
    rows = read_table(a.table, target)
    test = [r for r in rows if int(r["index"]) % 5 == 0]
    train = [r for r in rows if int(r["index"]) % 5 != 0]
    print(f"table {a.table}: {len(rows)} rows ({len(train)} fit, {len(test)} held out: index % 5 == 0); "
          f"target {target}; meter {rows[0].get('meter')}; threads {rows[0].get('threads')}")
    fitted = LayerwisePredictor(target=target, min_rows=8).fit([dict(r) for r in train])
    ratio = {}
    for t in {r["layer_type"] for r in train}:
        ratio[t] = float(np.median([r[target] / r["macs"] for r in train if r["layer_type"] == t and r["macs"] > 0]
                                   or [np.nan]))
    header = f"{'layer type':<12} {'n':>3} {'regressor':<30} {'R²':>7} {'MdAPE':>7} {'mean':>7} {'worst':>8}  | MACs-ratio baseline R², MdAPE"
    print(header)
    print("-" * len(header))
    ys, ps, bs = [], [], []
    for t in sorted({r["layer_type"] for r in test}):
        rs = [r for r in test if r["layer_type"] == t]
        if t not in fitted.regressors_:
            why = "no layerwise features for this type" if t not in FEATURES else "too few rows"
            print(f"{t:<12} {len(rs):>3} (not fitted: {why})")
            continue
        y = np.array([r[target] for r in rs])
        p = np.array([fitted.predict_layer(t, {k: v for k, v in r.items() if v != ""}, allow_zero=True) for r in rs])
        b = np.array([ratio[t] * r["macs"] for r in rs])
        e = ape(y, p)
        print(f"{t:<12} {len(rs):>3} {fitted.regressors_[t].candidate:<30} {r2(y, p):>7.3f} {np.median(e):>7.1%} "
              f"{e.mean():>7.1%} {e.max():>8.1%}  | {r2(y, b):.3f}, {np.median(ape(y, b)):.1%}")
        ys.append(y)
        ps.append(p)
        bs.append(b)
    y, p, b = np.concatenate(ys), np.concatenate(ps), np.concatenate(bs)
    e = ape(y, p)
    print(f"{'all fitted':<12} {len(y):>3} {'':<30} {r2(y, p):>7.3f} {np.median(e):>7.1%} {e.mean():>7.1%} "
          f"{e.max():>8.1%}  | {r2(y, b):.3f}, {np.median(ape(y, b)):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
