"""Fit the learned GPU model (fxenergy/predictors/params/learned-gpu.json) and print its validation.

    flock /tmp/fxenergy-cpu.lock uv run python scripts/fit_gpu_perf.py            # fit + LOGO, writes the JSON
    uv run python scripts/fit_gpu_perf.py --sample 0.2 --no-write                  # a quicker look

Steps (all on ../shared/data, nothing copied into the repository):

1. gpu-kernels-neusight: per family (gemm = linear+bmm, conv, elementwise, reduction = ln+softmax), a
   gradient-boosted tree ensemble maps dimensionless features to log(t / t_roofline). GEMM/conv: the
   harness floor (the fastest `add` call on that GPU: the timing loop's overhead, not the GPU) is
   subtracted and rows within 3x of it are left out. Memory families: measured = max(floor_op,
   lead·floor_op + t) (fitting.harness_time; per-op floors, lead fitted on streaming rows), every row
   above 1.25x its op's floor is fitted; they are priced by an achieved-bandwidth law shared by every GPU
   (fxenergy.perf.memory_law; ``--memory-model trees``: by their forests, as before gpu8).
   Leave-one-GPU-out: fit on four GPUs, predict the fifth (all its rows, with the median harness floor
   of the other four), for every GPU; printed beside a plain roofline under the same floor.
2. gpu-operators-nicolai (A30 with/without tensor cores, RTX 2080 Ti; batch 32, board power):
   the eager per-call dispatch floor (median time of the operators whose kernel model says < 2 us),
   the tensor-core factor (TF32 conv on the A30: measured over predicted), and the power model
   (board power fraction between idle and the power limit, linear in achieved roofline utilisation,
   per family), each validated leave-one-model-out on the operator logs summed per model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.perf import nicolai  # noqa: E402
from fxenergy.perf.datasets import data_root, load_neusight  # noqa: E402
from fxenergy.perf.features import GEMM_FOREST_DROPPED, design_features, forest_features  # noqa: E402
from fxenergy.perf.fitting import (  # noqa: E402
    CENSOR_MULT,
    GEMM_BOUND_MULT,
    GEOMETRY,
    HYPER,
    MEMORY_MODEL_FAMILIES,
    MODEL_FAMILIES,
    THROTTLED,
    design,
    fit_forest,
    gemm_fit_rows,
    harness_time,
    memory_harness,
    op_floors,
    throttled,
    uncensored,
)
from fxenergy.perf.kernels import WINOGRAD_MULTIPLY_FACTOR  # noqa: E402
from fxenergy.perf.memory_law import fit_memory_law, law_kinds  # noqa: E402
from fxenergy.perf.trees import Forest, forest_to_json  # noqa: E402

FLOOR_MULT = 3.0
NICOLAI_FLOOR_S = 8e-6  # the per-call time of the smallest Nicolai pointwise layers (A30), for the 3x filter


def conv_rows(rows, sample: float, seed: int = 0):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(np.array([k.family == "conv" for k in rows.kernels]))
    if sample < 1:
        idx = idx[rng.random(len(idx)) < sample]
    return [rows.kernels[i] for i in idx], rows.seconds[idx], [rows.device[i] for i in idx]


def harness_floors(rows) -> dict[str, float]:  # noqa: ANN001
    devs = np.asarray(rows.device)
    ops = np.asarray(rows.op)
    return {d: float(np.percentile(rows.seconds[(devs == d) & (ops == "add")], 5)) for d in dict.fromkeys(rows.device)}


def min_log_slowdown(kernels) -> np.ndarray:  # noqa: ANN001
    """Per kernel, the least ``log(t / t_bound)`` the model predicts: 0, or -log(WINOGRAD_MULTIPLY_FACTOR) for a
    Winograd-eligible convolution (as :meth:`fxenergy.perf.model.LearnedGPUModel.kernel_durations_s`)."""
    return np.array([-math.log(WINOGRAD_MULTIPLY_FACTOR) if k.winograd else 0.0 for k in kernels])


def ape(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return np.abs(pred / meas - 1.0) * 100.0


def law_inputs(kernels, devices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """``(t_dram_s, bytes / L2, kinds)`` per memory kernel, the inputs of :class:`MemoryLaw`."""
    from fxenergy.hardware import load_profile
    from fxenergy.perf.device import device_spec

    specs = {d: device_spec(load_profile(d)) for d in set(devices)}
    nbytes = np.array([k.bytes for k in kernels], dtype=float)
    bw = np.array([specs[d].bandwidth_bytes_per_s for d in devices])
    l2 = np.array([specs[d].l2_bytes for d in devices])
    return nbytes / bw, nbytes / l2, law_kinds(kernels)


def logo_and_fit(rows, sample: float, seed: int = 0, logo: bool = True, harness: str = "max",  # noqa: ANN001, ANN201
                 families: tuple[str, ...] = MODEL_FAMILIES, gemm_dropped: tuple[str, ...] = GEMM_FOREST_DROPPED,
                 drop_throttled: bool = True, winograd: bool = True, memory_model: str = "law",
                 gemm_harness: str = "max"):
    """Per family: leave-one-GPU-out table rows and the forest fitted on every GPU.

    GEMM and conv: the harness floor is taken as additive and rows within 3x of it are left out.
    Memory families (``harness="max"``): ``measured = max(floor_op, lead·floor_op + t_kernel)``
    (fitting.harness_time), every row above 1.25x its op's floor is fitted; ``harness="additive"`` is
    the treatment before (as GEMM), kept to print the comparison. ``gemm_dropped``: design columns the GEMM
    forest leaves out (features.forest_features; ``()`` = every column, the forests before gpu6);
    ``drop_throttled``: the GEMM forest is not fitted on fitting.THROTTLED rows (they are still scored);
    ``winograd``: Winograd-eligible conv rows are predicted down to their bound over WINOGRAD_MULTIPLY_FACTOR
    (``False``: never below the direct-count bound, the treatment before gpu7); ``memory_model``: under the
    max harness, the memory families are validated and priced by an achieved-bandwidth law
    (:mod:`fxenergy.perf.memory_law`, ``"law"``, gpu8) or by their forests (``"trees"``, before); their
    forests are fitted either way. ``gemm_harness="max"`` (gpu10): GEMM rows as the memory families, each
    against its own op's floor (``linear`` and ``bmm`` differ: 56 and 34 us on the A100), fitted on rows
    selected by their *bound* (>= GEMM_BOUND_MULT x the op's floor) and above 1.25x that floor (the rest are
    censored); ``"additive"``: the ``add`` floor subtracted, rows measured above 3x it (before gpu10).
    Returns (table, forests, floors, mh, laws)."""
    rng = np.random.default_rng(seed)
    fam = np.array([k.family for k in rows.kernels])
    devs = np.asarray(rows.device)
    ops = np.asarray(rows.op)
    floors = harness_floors(rows)
    op_floor = op_floors(rows.seconds, rows.device, rows.op)
    mh = memory_harness(rows) if harness == "max" else None
    table, forests, laws = [], {}, {}
    for f in MODEL_FAMILIES:
        idx = np.flatnonzero(fam == f)
        if sample < 1:
            idx = idx[rng.random(len(idx)) < sample]
        if f not in families:
            continue
        ks = [rows.kernels[i] for i in idx]
        meas = rows.seconds[idx]
        d = devs[idx]
        fl = np.array([floors[x] for x in d])
        big = meas > FLOOR_MULT * fl  # kernel-dominated: the table's "kern" rows, the same for both treatments
        memory = mh is not None and f in MEMORY_MODEL_FAMILIES
        gemm_max = f == "gemm" and gemm_harness == "max" and mh is not None
        use_law = memory and memory_model == "law"
        if use_law:
            t_dram, ws, kinds = law_inputs(ks, d.tolist())
        if memory or gemm_max:
            flo = np.array([mh["op_floor_s"][(x, o)] for x, o in zip(d, ops[idx])])
            X, y, tb = design(ks, meas, d.tolist(), GEOMETRY[f], offset_s=mh["lead"] * flo)
            # GEMM: selected on the bound, not on the outcome (a fast small GEMM is not left out)
            fit_rows = gemm_fit_rows(meas, tb, flo) if gemm_max else uncensored(meas, flo)
        else:
            X, y, tb = design(ks, meas, d.tolist(), GEOMETRY[f], offset_s=fl)
            fit_rows = big
        if f == "gemm" and drop_throttled:  # rows taken while the GPU's clock had collapsed (fitting.THROTTLED)
            fit_rows = fit_rows & ~throttled(d.tolist(), ops[idx].tolist(), meas - (mh["lead"] * flo if gemm_max else fl))
        # the prediction's floor, log(t / t_bound): the roofline, or a Winograd-eligible conv's roofline over
        # WINOGRAD_MULTIPLY_FACTOR (as fxenergy.perf.model prices it); winograd=False: the direct bound for every row
        lo_log = min_log_slowdown(ks) if winograd else np.zeros(len(ks))
        names = forest_features(f, gemm_dropped)
        X = X[:, [design_features(GEOMETRY[f]).index(c) for c in names]]  # the forest's own columns
        if logo:
            for held in sorted(set(d)):
                tr, te = (d != held) & fit_rows, d == held
                if memory or gemm_max:  # the held-out GPU's harness: the other four's lead and per-op floors (median)
                    lead_h = float(np.nanmedian([v for k, v in mh["lead_per_device"].items() if k != held]))
                    flo_h = {o: float(np.median([v for (x, oo), v in mh["op_floor_s"].items() if oo == o and x != held]))
                             for o in set(ops[idx].tolist())}
                    fh = np.array([flo_h[o] for o in ops[idx][te]])
                    kt = np.maximum(meas[tr] - lead_h * flo[tr], 0.05 * meas[tr])
                    if use_law:  # the law's lead correction is a harness term: added here, never at run time
                        law = fit_memory_law(kt, t_dram[tr], tb[tr], ws[tr], kinds[tr], flo[tr])
                        pk = np.maximum(tb[te], law.harness_lead * fh + law.kernel_s(t_dram[te], ws[te], kinds[te]))
                    else:
                        m = fit_forest(X[tr], np.log(kt / tb[tr]), seed=seed)
                        pk = tb[te] * np.exp(np.maximum(m.predict(X[te]), 0.0))
                    pred = harness_time(pk, fh, lead_h)
                    roof = harness_time(tb[te], fh, lead_h)
                else:
                    m = fit_forest(X[tr], y[tr], seed=seed)
                    hf = float(np.median([floors[x] for x in set(d) if x != held]))
                    pred = tb[te] * np.exp(np.maximum(m.predict(X[te]), lo_log[te])) + hf
                    roof = tb[te] + hf
                e, r, kb = ape(pred, meas[te]), ape(roof, meas[te]), big[te]
                # rows clearly above their own op's floor (1.25x; at 3x only the biggest memory kernels remain)
                ab = uncensored(meas[te], np.array([op_floor[(held, o)] for o in ops[idx][te]]))
                table.append({"family": f, "held_out": held, "n": int(te.sum()), "median": float(np.median(e)),
                              "p90": float(np.percentile(e, 90)), "n_kernel": int(kb.sum()),
                              "median_kernel": float(np.median(e[kb])) if kb.any() else float("nan"),
                              "p90_kernel": float(np.percentile(e[kb], 90)) if kb.any() else float("nan"),
                              "roofline_median": float(np.median(r)), "roofline_p90": float(np.percentile(r, 90)),
                              "roofline_median_kernel": float(np.median(r[kb])) if kb.any() else float("nan"),
                              "bias_kernel": float(np.median(np.log(pred[kb] / meas[te][kb]))) if kb.any() else float("nan"),
                              "n_above": int(ab.sum()), "median_above": float(np.median(e[ab])) if ab.any() else float("nan"),
                              "roofline_median_above": float(np.median(r[ab])) if ab.any() else float("nan"),
                              "harness": "max" if memory or gemm_max else "additive",
                              "model": "law" if use_law else "trees"})
                if f == "gemm":  # two subsets: roofline bound > 1 ms, transformer-shaped calls
                    sub = {"large": kb & (tb[te] > 1e-3), "transformer": kb & transformer_shaped(ks, ops[idx])[te]}
                    table[-1]["sub"] = {k: float(np.median(e[v])) if v.any() else float("nan") for k, v in sub.items()}
                print(_fmt(table[-1]), flush=True)
        if use_law:
            kt = np.maximum(meas - mh["lead"] * flo, 0.05 * meas)
            laws[f] = fit_memory_law(kt[fit_rows], t_dram[fit_rows], tb[fit_rows], ws[fit_rows], kinds[fit_rows], flo[fit_rows])
            print(f"{f} memory law (all five GPUs): {laws[f].to_json()}", flush=True)
        model = fit_forest(X[fit_rows], y[fit_rows], seed=seed)
        js = forest_to_json(model, names)
        # the JSON forest must reproduce sklearn's predictions
        check = Forest(js).predict(X[:500])
        assert np.allclose(check, model.predict(X[:500]), atol=1e-5), "forest serialisation mismatch"
        forests[f] = js
    return table, forests, floors, mh, laws


def transformer_shaped(kernels, ops) -> np.ndarray:  # noqa: ANN001
    """GEMM rows shaped like transformer layers (benchmarks/gpu_transformer_kernels.py's rules): ``linear`` with
    512..32768 tokens and 1024..10240 features in and out; ``bmm`` with batch >= 16, M in 512..2048 and one of
    the other two dims in 64..128 (Q·Kᵀ or A·V)."""
    b, m, n, k = (np.array([getattr(x, a) for x in kernels]) for a in ("batch", "m", "n", "k"))
    ops = np.asarray(ops)
    lin = (ops == "linear") & (m >= 512) & (m <= 32768) & (n >= 1024) & (n <= 10240) & (k >= 1024) & (k <= 10240)
    bmm = ((ops == "bmm") & (b >= 16) & (m >= 512) & (m <= 2048)
           & (((n >= 64) & (n <= 128)) | ((k >= 64) & (k <= 128))))
    return lin | bmm


def sample_masks(rows, sample: float, seed: int = 0) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Per family, the row indices the forests were fitted on (the same draws as :func:`logo_and_fit`)."""
    rng = np.random.default_rng(seed)
    fam = np.array([k.family for k in rows.kernels])
    out = {}
    for f in MODEL_FAMILIES:
        idx = np.flatnonzero(fam == f)
        out[f] = idx[rng.random(len(idx)) < sample] if sample < 1 else idx
    return out


def chip_corrections(rows, forests: dict, floors: dict, sample: float, seed: int = 0,  # noqa: ANN001, ANN201
                     mh: dict | None = None, laws: dict | None = None, families: tuple[str, ...] = MODEL_FAMILIES,
                     gemm_harness: str = "max"):
    """Per measured GPU die and family, a correction of the pooled forests (fitting.fit_correction).

    The forests see only dimensionless features, so they pool the five GPUs: a GPU's own bias (the V100
    runs big fp32 GEMMs faster than the pool, the P100 slower) stays in. For a GPU whose die is in the
    data (every SKU of it: same architecture and SM count) that bias is measured, and removed here.
    Memory families under the max harness (``mh``, see :func:`memory_harness`): every row above 1.25x
    its op's floor, kernel time = measured − lead·floor. Others: fitted on the kernel-dominated rows the
    forests were *not* fitted on. Checked by fitting on one half of those rows (split by row, seeded) and
    scoring the other half.

    A family with a law in ``laws`` is corrected against the law instead, and its result goes to
    ``chip_laws`` (``{"law": ...}``: the die's own law, where it beats the pooled law and curve on the
    held-out half, :func:`own_law_check`; else ``{"curve": ...}`` where the curve is kept), never to
    ``chips`` (which keeps the forests' corrections, so that older readers and forest-priced kernels get
    what they got before). ``families``: the families done (the random halves are drawn for every family,
    so a subset gets the same halves). Returns (chips, table, chip_laws).
    """
    from fxenergy.hardware import load_profile
    from fxenergy.perf.device import device_spec
    from fxenergy.perf.features import chip_key, correction_log
    from fxenergy.perf.fitting import fit_correction

    fam = np.array([k.family for k in rows.kernels])
    devs = np.asarray(rows.device)
    used = sample_masks(rows, sample, seed)
    conv_idx = np.flatnonzero(fam == "conv")  # the conv forest's NeuSight rows: conv_rows' own draw
    used["conv"] = conv_idx[np.random.default_rng(seed).random(len(conv_idx)) < sample] if sample < 1 else conv_idx
    rng = np.random.default_rng(seed + 1)
    chips: dict[str, dict] = {}
    chip_laws: dict[str, dict] = {}
    table = []
    for f in MODEL_FAMILIES:
        forest = Forest(forests[f])
        free = np.ones(len(rows.kernels), bool)
        free[used[f]] = False
        for d in sorted(set(devs.tolist())):
            idx = np.flatnonzero((fam == f) & (devs == d) & free)
            if not len(idx):
                continue
            half = rng.random(len(idx)) < 0.5
            if f not in families:
                continue
            ks = [rows.kernels[i] for i in idx]
            meas = rows.seconds[idx]
            if mh is not None and f in MEMORY_MODEL_FAMILIES:
                flo = np.array([mh["op_floor_s"][(d, o)] for o in np.asarray(rows.op)[idx]])
                # a law's fitted lead correction is the harness's, not the kernel's: out of the residual as well
                lead = mh["lead"] + (laws[f].harness_lead if laws and f in laws else 0.0)
                X, y, tb = design(ks, meas, [d] * len(ks), GEOMETRY[f], offset_s=lead * flo)
                keep = uncensored(meas, flo)
            elif mh is not None and f == "gemm" and gemm_harness == "max":  # as the GEMM forest was fitted
                flo = np.array([mh["op_floor_s"][(d, o)] for o in np.asarray(rows.op)[idx]])
                X, y, tb = design(ks, meas, [d] * len(ks), GEOMETRY[f], offset_s=mh["lead"] * flo)
                keep = gemm_fit_rows(meas, tb, flo)
            else:
                X, y, tb = design(ks, meas, [d] * len(ks), GEOMETRY[f], offset_s=floors[d])
                keep = meas > FLOOR_MULT * floors[d]
            if laws and f in laws:
                resid = y - np.log(laws[f].slowdown(ks, device_spec(load_profile(d)), tb))
            else:
                resid = y - np.maximum(forest.predict(X, design_features(GEOMETRY[f])), min_log_slowdown(ks))
            cur = fit_correction(resid[keep & half], tb[keep & half])
            te = keep & ~half
            before = np.abs(np.expm1(-resid[te])) * 100
            after = before if cur is None else np.abs(np.expm1(correction_log(cur, tb[te]) - resid[te])) * 100
            big = tb[te] > 1e-3
            table.append({"family": f, "device": d, "n": int(te.sum()), "before": float(np.median(before)),
                          "after": float(np.median(after)), "n_big": int(big.sum()),
                          "before_big": float(np.median(before[big])) if big.any() else None,
                          "after_big": float(np.median(after[big])) if big.any() else None})
            r = table[-1]
            r["kept"] = cur is not None and r["after"] < r["before"]  # only where the held-out half improves
            bb, ab = (f"{x:>8.1f}" if x is not None else f"{'-':>8}" for x in (r["before_big"], r["after_big"]))
            print(f"{f:<12}{d:<17}{r['n']:>6}{r['before']:>8.1f}{r['after']:>8.1f}{r['n_big']:>7}{bb}{ab}"
                  f"{'  kept' if r['kept'] else '  not kept'}", flush=True)
            full = fit_correction(resid[keep], tb[keep])
            key = chip_key(load_profile(d))
            if laws and f in laws:  # this die's own law (fitted on half, scored on the other, as the curve)
                own = own_law_check(laws[f], ks, meas, flo, tb, keep, half, d, mh["lead"], cur, r)
                if own is not None and key:
                    chip_laws.setdefault(key, {"fitted_on_profile": d})[f] = {"law": own.to_json()}
                elif full is not None and key and r["kept"]:
                    chip_laws.setdefault(key, {"fitted_on_profile": d})[f] = {"curve": full}
            elif full is not None and key and r["kept"]:
                chips.setdefault(key, {"fitted_on_profile": d})[f] = full
    return chips, table, chip_laws


def own_law_check(pooled, ks, meas, flo, tb, keep, half, device: str, lead: float, curve, row: dict):  # noqa: ANN001, ANN201
    """A measured die's own memory law against the pooled law (with and without the per-chip curve ``curve``),
    median APE on the held-out half of the rows in the measured time (NeuSight's harness, each law's own lead
    correction). Returns the die's law fitted on every row when it beats both, else None; fills ``row``."""
    from fxenergy.perf.features import correction_log

    t_dram, ws, kinds = law_inputs(ks, [device] * len(ks))
    kt = np.maximum(meas - lead * flo, 0.05 * meas)
    fit = keep & half
    own = fit_memory_law(kt[fit], t_dram[fit], tb[fit], ws[fit], kinds[fit], flo[fit])
    te = keep & ~half

    def ape_of(law, corr_log):  # noqa: ANN001, ANN202
        t = np.maximum(tb[te], law.kernel_s(t_dram[te], ws[te], kinds[te])) * np.exp(corr_log)
        return float(np.median(ape(harness_time(t + law.harness_lead * flo[te], flo[te], lead), meas[te])))

    pooled_ape = ape_of(pooled, 0.0)
    curve_ape = ape_of(pooled, correction_log(curve, tb[te])) if curve is not None else pooled_ape
    own_ape = ape_of(own, 0.0)
    row.update({"measured_pooled_law": pooled_ape, "measured_pooled_law_curve": curve_ape, "measured_own_law": own_ape})
    print(f"{'':<29}measured time, held-out half: pooled law {pooled_ape:.1f}, + curve {curve_ape:.1f}, "
          f"own law {own_ape:.1f}", flush=True)
    if own_ape >= min(pooled_ape, curve_ape):
        return None
    return fit_memory_law(kt[keep], t_dram[keep], tb[keep], ws[keep], kinds[keep], flo[keep])


def _feature_names(f: str) -> tuple[str, ...]:
    return forest_features(f)


def _fmt(r: dict) -> str:
    return (f"{r['family']:<12}{r['held_out']:<17}{r['n']:>7}{r['median']:>8.1f}{r['p90']:>8.1f}"
            f"{r['n_kernel']:>8}{r['median_kernel']:>8.1f}{r['p90_kernel']:>8.1f}{r['roofline_median']:>9.1f}{r['roofline_p90']:>9.1f}"
            f"{r.get('roofline_median_kernel', float('nan')):>9.1f}{r.get('bias_kernel', float('nan')):>+7.2f}"
            f"{r.get('n_above', 0):>7}{r.get('median_above', float('nan')):>7.1f}{r.get('roofline_median_above', float('nan')):>7.1f}")


HEADER = (f"{'family':<12}{'held-out GPU':<17}{'rows':>7}{'med%':>8}{'p90%':>8}{'kern':>8}{'med%':>8}{'p90%':>8}"
          f"{'roof med':>9}{'roof p90':>9}{'roof kern':>10}{'bias':>6}{'>1.25f':>8}{'med%':>7}{'roof':>7}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=float, default=0.15, help="fraction of kernel rows used (default 0.15)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-logo", action="store_true")
    ap.add_argument("--harness", choices=("max", "additive"), default="max",
                    help="memory families: measured = max(floor, lead*floor + kernel) (default) or floor + kernel "
                         "with rows under 3x the floor dropped (the treatment before, for comparison)")
    ap.add_argument("--memory-model", choices=("law", "trees"), default="law",
                    help="memory families (max harness): an achieved-bandwidth law shared by every GPU (default, "
                         "fxenergy.perf.memory_law) or their boosted trees (the model before gpu8, for comparison)")
    ap.add_argument("--gemm-harness", choices=("max", "additive"), default="max",
                    help="GEMM rows: measured = max(op floor, lead*op floor + kernel), fitted on rows selected by their "
                         "bound (default, gpu10), or the add floor subtracted with rows under 3x it dropped (before)")
    ap.add_argument("--setting-floors", action="store_true",
                    help="fit a dispatch floor per Nicolai setting (host) and family (nicolai.FLOOR_FAMILIES) and ship "
                         "it in the JSON; off by default: mixed on the Nicolai leave-one-model-out sums (gpu10)")
    ap.add_argument("--families", default=",".join(MODEL_FAMILIES),
                    help="families to fit and validate (a subset implies --no-write; default all)")
    ap.add_argument("-o", "--output", default=str(ROOT / "fxenergy/predictors/params/learned-gpu.json"))
    args = ap.parse_args(argv)

    rows = load_neusight()
    print(f"gpu-kernels-neusight: {len(rows.kernels)} rows; fitting on a {args.sample:.0%} sample")
    print("leave-one-GPU-out (APE %, all rows and kernel-dominated rows > 3x harness floor; roofline beside)")
    print(HEADER)
    families = tuple(f for f in args.families.split(",") if f)
    table, forests, floors, mh, laws = logo_and_fit(rows, args.sample, logo=not args.no_logo, harness=args.harness,
                                                    families=families, memory_model=args.memory_model,
                                                    gemm_harness=args.gemm_harness)
    if mh is not None:
        print(f"memory harness: lead = {mh['lead']:.3f} x op floor (per GPU: "
              + ", ".join(f"{k} {v:.3f}" for k, v in mh["lead_per_device"].items()) + ")")
    if set(families) != set(MODEL_FAMILIES):
        print("a subset of the families: nothing written")
        return 0
    if args.no_logo and Path(args.output).is_file():
        # the kernel forests are fitted exactly as before (same sample, seed and features): their
        # leave-one-GPU-out table is the previous run's; say so rather than leave the devices unvalidated
        prev = json.loads(Path(args.output).read_text())["fitted_on"]
        if prev.get("sample") == args.sample and prev.get("leave_one_gpu_out"):
            table = prev["leave_one_gpu_out"]
            print(f"--no-logo: leave-one-GPU-out table carried over from {args.output} (same sample {args.sample})")

    params = {
        "families": forests,
        "memory_law": {f: law.to_json() for f, law in laws.items()},

        "family_alias": {"gather": "elementwise", "copy": "elementwise"},
        "dispatch_floor_s": 0.0,
        "dispatch_floors": {},
        "backward_factor": {},
        "tensor_core_factor": 1.0,
        "power": {},
        "validated": {},
    }
    neusight_conv = conv_rows(rows, args.sample)

    def refit_conv(extra_k, extra_s, extra_d, extra_tf32):
        ks, secs, devs = neusight_conv
        xs, ys, keeps = [], [], []
        groups = [(ks, secs, list(devs), False)]  # NeuSight rows carry the additive harness floor
        for flag in (False, True):
            sel = np.flatnonzero(np.asarray(extra_tf32) == flag)
            groups.append(([extra_k[i] for i in sel], np.asarray(extra_s)[sel], [extra_d[i] for i in sel], flag))
        for gk, gs, gd, tf32 in groups:
            if not len(gk):
                continue
            off = np.array([floors.get(d, 0.0) for d in gd])  # Nicolai rows: loop throughput, no harness floor
            X, y, _ = design(gk, gs, gd, True, conv_tf32=tf32, offset_s=off)
            xs.append(X)
            ys.append(y)
            keeps.append(gs > FLOOR_MULT * np.array([floors.get(d, NICOLAI_FLOOR_S) for d in gd]))
        X, y, keep = np.vstack(xs), np.concatenate(ys), np.concatenate(keeps)
        return forest_to_json(fit_forest(X[keep], y[keep]), _feature_names("conv"))

    nic = nicolai.fit_nicolai(params, refit_conv, nicolai.FLOOR_FAMILIES if args.setting_floors else ())
    params.update(nic["params"])
    print("per-chip correction of the pooled forests (GPUs whose die is in the data); median APE of held-out half, "
          "kernel-dominated rows, before/after; 'big' = roofline bound > 1 ms")
    print(f"{'family':<12}{'GPU':<17}{'rows':>6}{'before':>8}{'after':>8}{'big':>7}{'before':>8}{'after':>8}  curve")
    chips, corr_table, _ = chip_corrections(rows, params["families"], floors, args.sample, mh=mh,
                                            gemm_harness=args.gemm_harness)
    if laws:  # the memory families once more, against their laws (chip_memory_law; chip_correction stays the forests')
        print("per-chip correction of the memory laws (kernels the laws price): the same columns, then the die's own law")
        _, law_table, chip_laws = chip_corrections(rows, params["families"], floors, args.sample, mh=mh, laws=laws,
                                                   families=tuple(laws))
        params["chip_memory_law"] = {**chip_laws, "check": law_table}
    params["chip_correction"] = {
        "chips": chips, "check": corr_table,
        "rule": "per GPU die (architecture:SMs) and family, median log(t_meas/t_pred) per half-decade of the roofline "
                "bound (bins >= 30 rows), piecewise linear; fp32 CUDA-core kernels only; fitted on kernel-dominated "
                "rows outside the forests' sample; kept only where it lowers the median APE of a held-out half"}
    params["validated"] = validated_errors(table, nic)
    print(json.dumps(params["validated"], indent=1))
    fitted_on = {
        "dataset": ["gpu-kernels-neusight (sitar-lab/NeuSight @6945927, scripts/asplos/data/dataset/train)",
                    "gpu-operators-nicolai (ConstantinNicolai/ml-operator-profiling @bd3aace), finalbench_all_operations_*"],
        "kernel_rows": len(rows.kernels), "sample": args.sample, "harness_floor_s": floors,
        "kernel_fit": "HistGradientBoostingRegressor(loss=absolute_error) per family on log(t/t_roofline); "
                      + (f"gemm: measured = max(floor_op, lead*floor_op + t) (per-op harness floor of linear / bmm), rows "
                         f"with bound >= {GEMM_BOUND_MULT}x and measured > {CENSOR_MULT}x their op's floor; conv: "
                         if args.gemm_harness == "max" else "gemm/conv: ")
                      + f"t = measured - harness floor, rows > {FLOOR_MULT}x harness floor; "
                      + ("elementwise/reduction: measured = max(floor_op, lead*floor_op + t), rows > "
                         f"{CENSOR_MULT}x their op's floor; " if mh is not None else "")
                      + f"{HYPER}"
                      + ("; elementwise/reduction priced by the achieved-bandwidth law (fxenergy.perf.memory_law, "
                         "scipy least_squares, soft L1 on log time, same rows); their forests kept for older readers"
                         if laws else ""),
        "memory_harness": None if mh is None else {
            "lead_fraction": round(mh["lead"], 4), "lead_per_device": {k: round(v, 4) for k, v in mh["lead_per_device"].items()},
            "op_floor_s": {f"{d}:{o}": round(v, 9) for (d, o), v in mh["op_floor_s"].items()}},
        "gemm_forest_dropped": list(GEMM_FOREST_DROPPED),
        "gemm_rows_not_fitted": "fitting.THROTTLED (GPU, op, kernel seconds above which): "
                                + str([list(t) for t in THROTTLED]),
        "leave_one_gpu_out": table, "nicolai": nic["report"],
        "script": "scripts/fit_gpu_perf.py",
    }
    old = Path(args.output)
    if old.is_file():  # the training-step power rule is fitted by benchmarks/gpu_models.py --fit-training: keep it
        prev = json.loads(old.read_text())["params"].get("training_power")
        if prev:
            params["training_power"] = prev
    if not args.no_write:
        from fxenergy._files import write_atomic
        from fxenergy.predictors.interface import make_artifact

        art = make_artifact("learned", None, params, fitted_on)
        write_atomic(args.output, json.dumps(art, separators=(",", ":")) + "\n")
        print(f"wrote {args.output}")
    return 0


def validated_errors(table: list[dict], nic: dict) -> dict:
    """Per-device expected duration error: LOGO kernel medians (mean over families), Nicolai model sums."""
    devices: dict[str, dict] = {}
    by_dev: dict[str, list[float]] = {}
    for r in table:
        by_dev.setdefault(r["held_out"], []).append(r["median"])
    for d, v in by_dev.items():
        devices[d] = {"error_pct": round(float(np.mean(v)), 1),
                      "basis": f"leave-one-GPU-out on gpu-kernels-neusight (median kernel APE, {d} held out)"}
    for d, e in nic.get("device_errors", {}).items():
        devices[d] = {"error_pct": round(float(e), 1), "basis": "leave-one-model-out on gpu-operators-nicolai model sums (time)"}
    overall = float(np.mean([v["error_pct"] for v in devices.values()])) if devices else float("nan")
    return {"devices": devices,
            "default": {"error_pct": round(overall, 1),
                        "basis": "a GPU outside the data: mean leave-one-GPU-out / leave-one-model-out error"}}


if __name__ == "__main__":
    if not (data_root() / "gpu-kernels-neusight").is_dir():
        sys.exit("../shared/data/gpu-kernels-neusight is not there")
    sys.exit(main())
