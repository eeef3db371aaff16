"""Leave-one-GPU-out for the memory families (elementwise, reduction): the shipped trees against
low-capacity models that might transfer better to a GPU never measured (issue 11, branch gpu8).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python scripts/gpu_memory_logo.py     # ~2 min

Same rows, sample (15%, seed 0), harness (measured = max(floor_op, lead·floor_op + t_kernel)) and
held-out treatment (the other four GPUs' lead and per-op floors) as ``scripts/fit_gpu_perf.py``'s
memory table; its ``trees`` rows reproduce that table. Candidates, each fitted on four GPUs:

* ``roofline``: t_kernel = t_bound (no fit).
* ``param``: t_kernel = max(t_bound, t0 + m_kind · t_dram / (eta · s(ws))), ``t_dram = bytes / BW``,
  ``s(ws) = 1 + g / (1 + ws / L2)`` (a working set well inside L2 streams up to 1 + g faster), ``m_kind``:
  1 for elementwise and layer norm's reference, a factor for softmax rows <= 1024 and > 1024 (PyTorch
  keeps short rows in registers and re-reads long ones) and for layer norm; eta, t0 (s), g shared by
  every GPU. scipy.optimize.least_squares on log error (soft L1).
* ``param-h+cls``: as ``param-h`` with eta per device class (``--classes``: GPUs of HBM memory after
  Pascal against the rest; a spec-sheet fact, but chosen after seeing the five GPUs: two per class).
* ``trees/param``: the trees fitted on log(t_kernel / param) (a physical base learner, trees on the
  residual) and their prediction shrunk by ``--shrink``.
* ``trees-dev``: the trees without the features that carry the SM count (elements per resident thread,
  rows per SM), which let them tell the training GPUs apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_gpu_perf import FLOOR_MULT, ape, harness_floors, sample_masks  # noqa: E402

from fxenergy.hardware import load_profile  # noqa: E402
from fxenergy.perf.datasets import load_neusight  # noqa: E402
from fxenergy.perf.device import device_spec  # noqa: E402
from fxenergy.perf.features import MEMORY_FEATURES  # noqa: E402
from fxenergy.perf.fitting import design, fit_forest, harness_time, memory_harness, op_floors, uncensored  # noqa: E402

# test-only device classes for the ``param+cls`` candidate (not in the profiles): HBM after Pascal
HBM_AFTER_PASCAL = {"a100-40gb-pcie": 1, "v100-pcie-32gb": 1, "p100-pcie-16gb": 0, "p4": 0, "t4": 0}
SOFTMAX_SHORT_COLS = 1024  # PyTorch's persistent softmax keeps rows up to 1024 elements in registers


def kinds(ks, ops) -> np.ndarray:  # noqa: ANN001
    """0 elementwise or layer norm (one fit per family: eta is the family's), 1 softmax rows <= 1024, 2 longer
    softmax rows."""
    ops = np.asarray(ops)
    cols = np.array([k.cols for k in ks])
    out = np.zeros(len(ks), int)
    out[(ops == "softmax") & (cols <= SOFTMAX_SHORT_COLS)] = 1
    out[(ops == "softmax") & (cols > SOFTMAX_SHORT_COLS)] = 2
    return out


def param_predict(theta: np.ndarray, t_dram: np.ndarray, t_bound: np.ndarray, ws: np.ndarray, kind: np.ndarray,
                  cls: np.ndarray, n_cls: int, t0_unit_s: np.ndarray | float = 1e-6) -> np.ndarray:
    """``theta = [log eta_0.., log t0, log g, log m_1, log m_2]``; t0 in units of ``t0_unit_s``
    (1 us: a per-kernel cost; the row's harness floor: a correction of the harness lead; 0: none)."""
    eta = np.exp(theta[:n_cls])[cls]
    t0 = np.exp(theta[n_cls]) * t0_unit_s
    g = np.exp(theta[n_cls + 1])
    m = np.concatenate([[1.0], np.exp(theta[n_cls + 2:])])[kind]
    s = 1.0 + g / (1.0 + ws)
    return np.maximum(t_bound, t0 + m * t_dram / (eta * s))


def fit_param(t_kernel, t_dram, t_bound, ws, kind, cls, n_cls, t0_unit_s=1e-6):  # noqa: ANN001, ANN201
    n_m = 2 if kind.max() > 0 else 0
    x0 = np.concatenate([np.full(n_cls, np.log(0.8)), [np.log(2.0 if np.ndim(t0_unit_s) == 0 else 0.1), np.log(0.3)],
                         np.zeros(n_m)])

    def res(th):  # noqa: ANN001, ANN202
        return np.log(param_predict(th, t_dram, t_bound, ws, kind, cls, n_cls, t0_unit_s) / t_kernel)

    lo = np.concatenate([np.full(n_cls, np.log(0.2)), [np.log(1e-4), np.log(1e-3)], np.full(n_m, np.log(0.5))])
    hi = np.concatenate([np.full(n_cls, np.log(1.0)), [np.log(50.0), np.log(20.0)], np.full(n_m, np.log(8.0))])
    return least_squares(res, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1).x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=float, default=0.15)
    ap.add_argument("--shrink", type=float, default=1.0, help="trees/param: the residual trees' prediction times this")
    ap.add_argument("--classes", action="store_true", help="also score param+cls (eta per HBM-after-Pascal class)")
    args = ap.parse_args(argv)

    rows = load_neusight()
    fam_all = np.array([k.family for k in rows.kernels])
    devs, ops = np.asarray(rows.device), np.asarray(rows.op)
    floors = harness_floors(rows)
    op_floor = op_floors(rows.seconds, rows.device, rows.op)
    mh = memory_harness(rows)
    masks = sample_masks(rows, args.sample)
    print(f"memory harness lead {mh['lead']:.3f}; sample {args.sample:.0%}, seed 0")
    head = (f"{'family':<12}{'held-out':<16}{'model':<13}{'rows':>6}{'med%':>7}{'p90%':>7}{'kern':>6}{'med%':>7}"
            f"{'bias':>7}{'>1.25f':>7}{'med%':>7}")
    summary: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for f in ("elementwise", "reduction"):
        idx = masks[f]
        assert (fam_all[idx] == f).all()
        ks = [rows.kernels[i] for i in idx]
        meas, d, o = rows.seconds[idx], devs[idx], ops[idx]
        flo = np.array([mh["op_floor_s"][(x, y)] for x, y in zip(d, o)])
        X, _, tb = design(ks, meas, d.tolist(), False, offset_s=mh["lead"] * flo)
        specs = {x: device_spec(load_profile(x)) for x in set(d.tolist())}
        t_dram = np.array([k.bytes for k in ks]) / np.array([specs[x].bandwidth_bytes_per_s for x in d])
        ws = 2.0 ** X[:, MEMORY_FEATURES.index("log2_bytes_over_l2")]
        kind = kinds(ks, o)
        cls = np.array([HBM_AFTER_PASCAL[x] for x in d])
        fit_rows = uncensored(meas, flo)
        big = meas > FLOOR_MULT * np.array([floors[x] for x in d])
        dev_free = [i for i, c in enumerate(MEMORY_FEATURES) if c not in ("log2_elems_per_thread", "log2_rows_per_sm")]
        zero = np.zeros(len(d), int)
        print(f"\n{head}")
        for held in sorted(set(d.tolist())):
            tr, te = (d != held) & fit_rows, d == held
            lead_h = float(np.nanmedian([v for k, v in mh["lead_per_device"].items() if k != held]))
            flo_h = {y: float(np.median([v for (x, oo), v in mh["op_floor_s"].items() if oo == y and x != held]))
                     for y in set(o.tolist())}
            fh = np.array([flo_h[y] for y in o[te]])
            kt = np.maximum(meas[tr] - lead_h * flo[tr], 0.05 * meas[tr])  # training kernel times
            preds: dict[str, np.ndarray] = {}
            m = fit_forest(X[tr], np.log(kt / tb[tr]))
            preds["trees"] = tb[te] * np.exp(np.maximum(m.predict(X[te]), 0.0))
            m = fit_forest(X[tr][:, dev_free], np.log(kt / tb[tr]))
            preds["trees-dev"] = tb[te] * np.exp(np.maximum(m.predict(X[te][:, dev_free]), 0.0))
            preds["roofline"] = tb[te].copy()
            th = fit_param(kt, t_dram[tr], tb[tr], ws[tr], kind[tr], zero[tr], 1)
            preds["param"] = param_predict(th, t_dram[te], tb[te], ws[te], kind[te], zero[te], 1)
            base_tr = param_predict(th, t_dram[tr], tb[tr], ws[tr], kind[tr], zero[tr], 1)
            m = fit_forest(X[tr], np.log(kt / base_tr))
            preds["trees/param"] = np.maximum(preds["param"] * np.exp(args.shrink * m.predict(X[te])), tb[te])
            m = fit_forest(X[tr][:, dev_free], np.log(kt / base_tr))
            preds["tdev/param"] = np.maximum(preds["param"] * np.exp(args.shrink * m.predict(X[te][:, dev_free])), tb[te])
            flo_tr = flo[tr]  # the training rows' own op floors; the held-out GPU's are fh
            th_h = fit_param(kt, t_dram[tr], tb[tr], ws[tr], kind[tr], zero[tr], 1, flo_tr)
            preds["param-h"] = param_predict(th_h, t_dram[te], tb[te], ws[te], kind[te], zero[te], 1, fh)
            th_0 = fit_param(kt, t_dram[tr], tb[tr], ws[tr], kind[tr], zero[tr], 1, 0.0)
            preds["param-0"] = param_predict(th_0, t_dram[te], tb[te], ws[te], kind[te], zero[te], 1, 0.0)
            if args.classes:
                ncls = len(set(cls[tr].tolist()))
                c_tr = cls[tr] if ncls == 2 else zero[tr]
                th2 = fit_param(kt, t_dram[tr], tb[tr], ws[tr], kind[tr], c_tr, ncls, flo_tr)
                c_te = cls[te] if ncls == 2 else zero[te]
                preds["param-h+cls"] = param_predict(th2, t_dram[te], tb[te], ws[te], kind[te], c_te, ncls, fh)
            for name, pk in preds.items():
                pred = harness_time(pk, fh, lead_h)
                e, kb = ape(pred, meas[te]), big[te]
                ab = uncensored(meas[te], np.array([op_floor[(held, y)] for y in o[te]]))
                r = (float(np.median(e)), float(np.median(e[kb])) if kb.any() else np.nan,
                     float(np.median(e[ab])) if ab.any() else np.nan)
                summary.setdefault((f, name), []).append(r)
                bias = float(np.median(np.log(pred[kb] / meas[te][kb]))) if kb.any() else np.nan
                print(f"{f:<12}{held[:15]:<16}{name:<13}{te.sum():>6}{r[0]:>7.1f}{np.percentile(e, 90):>7.1f}"
                      f"{kb.sum():>6}{r[1]:>7.1f}{bias:>+7.2f}{ab.sum():>7}{r[2]:>7.1f}", flush=True)
            for lab, t_, unit in (("param", th, "us"), ("param-h", th_h, "x floor"), ("param-0", th_0, "-")):
                print(f"{'':<28}{lab}: eta {np.exp(t_[0]):.3f} t0 {np.exp(t_[1]):.3g} {unit} g {np.exp(t_[2]):.2f}"
                      + (f" m_sm_short/sm_long {' '.join(f'{v:.2f}' for v in np.exp(t_[3:]))}" if len(t_) > 3 else ""))
        print("in-sample, one GPU at a time (param-h): eta, t0 (x floor), g, m_sm_short/sm_long")
        for x in sorted(set(d.tolist())):
            sel = (d == x) & fit_rows
            kt_x = np.maximum(meas[sel] - mh["lead"] * flo[sel], 0.05 * meas[sel])
            t_ = fit_param(kt_x, t_dram[sel], tb[sel], ws[sel], kind[sel], zero[sel], 1, flo[sel])
            print(f"  {x:<16}" + " ".join(f"{v:.3f}" for v in np.exp(t_)))
    print("\nmean over held-out GPUs of the median APE (worst GPU in brackets): all rows, kern, >1.25f")
    for (f, name), v in summary.items():
        a = np.array(v)
        print(f"{f:<12}{name:<13}" + "".join(f"{np.mean(a[:, j]):>7.1f} ({np.max(a[:, j]):>5.1f})" for j in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
