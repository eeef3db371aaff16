"""What the memory rows of gpu-kernels-neusight look like per GPU, and how the learned model's memory
families do on the Nicolai per-layer rows (issue 11, gpu8; read-only, prints tables).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_memory_rows.py     # ~1 min

1. NeuSight: median ``log((measured − lead·floor) / t_bound)`` (rows above 1.25x their op's floor, each GPU's own
   lead) per GPU and op group, by working set over L2 and, for ``ln``/``softmax``/two-input elementwise rows with
   a working set over L2, by row length.
2. Nicolai (A30, RTX 2080 Ti; batch 32): median ``log(pred/meas)`` per family on layers over 30 µs, with the
   shipped laws, with the same file priced by its forests only (``memory_law`` and ``chip_memory_law`` removed), and
   with the pooled reduction law on every reduction (batch norm and pooling too: ``law_covers`` widened, the
   treatment gpu8 tried first).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.perf import nicolai  # noqa: E402
from fxenergy.perf.datasets import load_neusight, load_nicolai_ops  # noqa: E402
from fxenergy.perf.fitting import design, memory_harness, uncensored  # noqa: E402

OPS = ("add", "addu", "mul", "mulu", "div", "divu", "pow", "powu", "relu", "gelu", "tanh", "ln", "softmax")
GROUPS = {"ew2": ("add", "mul", "div", "pow"), "ew1": ("addu", "mulu", "divu", "powu", "relu"), "act": ("gelu", "tanh"),
          "ln": ("ln",), "sm": ("softmax",)}
PARAMS = ROOT / "fxenergy" / "predictors" / "params" / "learned-gpu.json"


def neusight() -> None:
    rows = load_neusight(OPS)
    mh = memory_harness(rows)
    devs, op = np.asarray(rows.device), np.asarray(rows.op)
    X, _, tb = design(rows.kernels, rows.seconds, rows.device, False)
    flo = np.array([mh["op_floor_s"][(d, o)] for d, o in zip(devs, op)])
    lead = np.array([mh["lead_per_device"][d] for d in devs])
    r = np.log((rows.seconds - lead * flo) / tb)
    ok = uncensored(rows.seconds, flo)
    ws = X[:, 1]
    cols = np.log2([k.cols for k in rows.kernels])

    def table(title: str, edges: list[tuple[float, float]], key: np.ndarray, extra: np.ndarray, groups) -> None:  # noqa: ANN001
        print(title)
        print(f"{'GPU':<16}{'ops':<5}" + "".join(f"{f'{a:g}..{b:g}':>13}" for a, b in edges))
        for g in groups:
            for d in sorted(set(devs.tolist())):
                cells = []
                for a, b in edges:
                    sel = ok & extra & (devs == d) & np.isin(op, GROUPS[g]) & (key >= a) & (key < b)
                    cells.append(f"{np.median(r[sel]):+.2f}({sel.sum()})" if sel.sum() > 5 else "-")
                print(f"{d:<16}{g:<5}" + "".join(f"{c:>13}" for c in cells))

    table("NeuSight: median log(kernel / t_bound) by log2(working set / L2)", [(-99, -1), (-1, 1), (1, 3), (3, 5), (5, 99)],
          ws, np.ones(len(ws), bool), GROUPS)
    table("NeuSight: the same by log2(row length), working set over 2x L2", [(0, 8), (8, 10), (10, 11), (11, 12), (12, 13)],
          cols, ws >= 1, ("ln", "sm", "ew2"))


def nicolai_rows() -> None:
    df = load_nicolai_ops()
    meas = df["time_per_iter_s"].to_numpy(float)
    full = json.loads(PARAMS.read_text())["params"]
    trees = {k: v for k, v in full.items() if k not in ("memory_law", "chip_memory_law")}
    print("\nNicolai per-layer rows over 30 us: median log(pred/meas) per family (law = shipped; forests = same file without laws)")
    print(f"{'setting':<11}{'family':<12}{'rows':>5}{'law':>8}{'forests':>9}{'law on all':>11}{'time share':>11}")
    preds = {}
    for name, p in (("law", full), ("forests", trees), ("all", full)):
        if name == "all":  # the law on every kernel of its family
            from fxenergy.perf import model as perf_model

            saved = perf_model.law_covers
            perf_model.law_covers = lambda family, ks: np.ones(len(ks), dtype=bool)
        try:
            pr = nicolai.row_predictions(df, p)
        finally:
            if name == "all":
                perf_model.law_covers = saved
        preds[name] = (np.maximum(pr["t_raw"], p["dispatch_floor_s"]), pr["family"])
    for s in df["setting"].unique():
        in_s = (df["setting"] == s).to_numpy()
        for fam in ("elementwise", "reduction"):
            sel = in_s & (preds["law"][1] == fam) & (meas > 30e-6)
            if sel.sum() < 3:
                continue
            vals = [float(np.median(np.log(preds[k][0][sel] / meas[sel]))) for k in ("law", "forests", "all")]
            share = meas[in_s & (preds["law"][1] == fam)].sum() / meas[in_s].sum()
            print(f"{s:<11}{fam:<12}{sel.sum():>5}{vals[0]:>+8.2f}{vals[1]:>+9.2f}{vals[2]:>+11.2f}{share:>11.2f}")


if __name__ == "__main__":
    neusight()
    nicolai_rows()
