"""What the learned GPU model takes from the Nicolai operator logs (A30, A30 without tensor cores,
RTX 2080 Ti; torchvision layers at batch 32, nvidia-smi board power), and its leave-one-model-out check.

Fitted here: the eager dispatch floor per call, the tensor-core factor (TF32 cuDNN conv on the A30,
measured over predicted), and the board-power model per family. The kernel durations themselves come
from the NeuSight-fitted forests only, so on these two GPUs the time is a pure transfer.

Models: the raw logs list each model's distinct layers in model order; a model starts at a Conv2d
with 3 input channels. A "model sum" is therefore the sum over its *distinct* layers (each measured
once), not a full forward pass; it checks that per-layer errors do not pile up.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["fit_nicolai", "row_predictions", "segment_models", "fit_components", "evaluate", "setting_floors",
           "FLOOR_FAMILIES", "floor_for"]

# The eager dispatch floor of a setting (host CPU + eager PyTorch + the library's host path), per family: a loop
# of one module cannot run faster than the host issues its calls. Nicolai's own rows show it: on the A30's host
# a Linear costs 26-29 us whatever its size (cuBLAS's host path), a Conv2d 41-45 us (cuDNN's), a ReLU 7.6-7.9 us;
# on the RTX 2080 Ti's host 72-76, 100-117 and 21-23 us: the same ~2.8x for every op, so the host, not the GPU.
# A BatchNorm2d costs 57-59 us (A30 host) and 137-158 us (RTX 2080 Ti host) whatever its size, a pooling layer
# 12-15 and 36-41 us: batch norm has its own key, ``batch_norm``, apart from the other reductions.
# ``FLOOR_FAMILIES``: the keys a setting's own floor is estimated for with ``scripts/fit_gpu_perf.py
# --setting-floors`` (the rest use the pooled ``dispatch_floor_s``; without the option, none: the shipped file has
# no setting floors, see docs/validation.md, gpu10); ``FLOOR_DECILE``: the floor is the median measured time of the rows whose roofline bound
# is in the lowest tenth of that (setting, key): chosen by the bound, which is known before the run.
FLOOR_FAMILIES = ("gemm", "conv", "elementwise", "reduction", "batch_norm")
FLOOR_DECILE = 0.1
NO_KERNEL_OPS = ("StochasticDepth",)  # identity in eval mode: a Python call that launches nothing (2.8 us on the A30)


def segment_models(df) -> np.ndarray:  # noqa: ANN001
    """Model id per row: a new model at every Conv2d(3, ...) (per source file, in file order)."""
    ids = np.zeros(len(df), dtype=int)
    current, last_src = -1, None
    for i, (src, label) in enumerate(zip(df["source_file"], df["label"], strict=True)):
        if src != last_src or re.match(r"Conv2d\(3, ", str(label)):
            current += 1
            last_src = src
        ids[i] = current
    return ids


def row_predictions(df, params: dict[str, Any]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Per Nicolai row: raw kernel-model time (s, no floor, no TC factor), bound (s), tensor-core flag, family."""
    from fxenergy.hardware import load_profile
    from fxenergy.perf.memory_law import MemoryLaw
    from fxenergy.perf.model import LearnedGPUModel, PerfParams
    from fxenergy.perf.trees import Forest

    pp = PerfParams("fit", {f: Forest(d) for f, d in params["families"].items()}, params["family_alias"], 0.0, {}, 1.0,
                    {"default": {"elementwise": [0.0, 0.0]}}, {}, None,
                    memory_law={f: MemoryLaw.from_json(d) for f, d in params.get("memory_law", {}).items()})
    t_raw = np.zeros(len(df))
    tb = np.zeros(len(df))
    tc = np.zeros(len(df), dtype=bool)
    fam = np.empty(len(df), dtype=object)
    for setting in df["setting"].unique():
        sel = np.flatnonzero((df["setting"] == setting).to_numpy())
        prof = load_profile(df["profile"].iloc[sel[0]])
        model = LearnedGPUModel(prof, pp, conv_tf32=setting != "A30_no_tc")
        kern, owner = [], []
        for i in sel:
            for k in df["kernels"].iloc[i]:
                kern.append(k)
                owner.append(i)
        t, b = model.kernel_durations_s(kern)
        rows_of = np.asarray(owner)
        np.add.at(t_raw, rows_of, t)
        np.add.at(tb, rows_of, b)
        for i in sel:
            k0 = df["kernels"].iloc[i][0]
            fam[i] = k0.family
            tc[i] = model.device.uses_tensor_cores(k0.family, k0.dtype, model.matmul_precision, model.conv_tf32)
    return {"t_raw": t_raw, "t_bound": tb, "tc": tc, "family": fam}


def fit_components(df, pred: dict[str, np.ndarray], mask: np.ndarray,  # noqa: ANN001
                   floor_families: tuple[str, ...] = ()) -> dict[str, Any]:
    """Dispatch floor, tensor-core factor and power coefficients from the rows in ``mask``."""
    meas = df["time_per_iter_s"].to_numpy(float)
    # the eager per-call floor: what a pointwise layer whose kernel needs < 2 us takes
    small = mask & (pred["t_raw"] < 2e-6) & (pred["family"] == "elementwise")
    floor = float(np.median(meas[small])) if small.any() else 8e-6
    big_tc = mask & pred["tc"] & (pred["t_raw"] > 3 * floor)
    tc_factor = float(np.median(meas[big_tc] / pred["t_raw"][big_tc])) if big_tc.sum() >= 5 else 1.0
    tc_factor = max(tc_factor, 1.0)
    # utilisation against the measured time (the physics: power follows what the GPU achieved); fitting on
    # the model's predicted utilisation instead was tried: A30 energy 5.0% but RTX 2080 Ti 9.4% median
    frac, util = power_targets(df, pred)
    pfam = power_family(pred["family"], pred["tc"])
    power = {"default": _power_coefficients(frac, util, pfam, mask), "devices": {}}
    for prof in df["profile"].unique():
        sel = mask & (df["profile"] == prof).to_numpy()
        power["devices"][str(prof)] = _power_coefficients(frac, util, pfam, sel)
    return {"dispatch_floor_s": floor, "dispatch_floors": setting_floors(df, pred, mask, floor_families),
            "tensor_core_factor": tc_factor,
            "power": power}


def setting_floors(df, pred: dict[str, np.ndarray], mask: np.ndarray,  # noqa: ANN001
                   families: tuple[str, ...] = FLOOR_FAMILIES) -> dict[str, dict[str, float]]:
    """Per profile (a host: the A30 with and without tensor cores is one) and key of ``families``,
    the dispatch floor: median measured per-call time of the rows in ``mask`` whose roofline bound is in the
    lowest ``FLOOR_DECILE`` of that profile's family (at least 5 rows)."""
    meas = df["time_per_iter_s"].to_numpy(float)
    prof = df["profile"].to_numpy()
    kernel_rows = ~df["op_type"].isin(NO_KERNEL_OPS).to_numpy()
    key = floor_keys(df, pred)
    out: dict[str, dict[str, float]] = {}
    for p in dict.fromkeys(prof.tolist()):
        for f in families:
            sel = np.flatnonzero(mask & kernel_rows & (prof == p) & (key == f))
            if len(sel) < 5:
                continue
            low = sel[pred["t_bound"][sel] <= np.quantile(pred["t_bound"][sel], FLOOR_DECILE)]
            if len(low) < 5:
                low = sel[np.argsort(pred["t_bound"][sel])[:5]]
            out.setdefault(str(p), {})[f] = float(np.median(meas[low]))
    return out


def floor_keys(df, pred: dict[str, np.ndarray]) -> np.ndarray:  # noqa: ANN001
    """Per row, the key of its dispatch floor: ``batch_norm`` for BatchNorm2d, else the kernel family."""
    return np.where(df["op_type"].to_numpy() == "BatchNorm2d", "batch_norm", pred["family"].astype(str))


def floor_for(comp: dict[str, Any], profile: str, family: str) -> float:
    """The dispatch floor of ``family`` on ``profile``'s setting: its own where fitted, else the pooled one."""
    return float(comp.get("dispatch_floors", {}).get(profile, {}).get(family, comp["dispatch_floor_s"]))


def power_family(family: np.ndarray, tc: np.ndarray) -> np.ndarray:
    """The power model's family key: ``conv_tc``/``gemm_tc`` for tensor-core (TF32/fp16/bf16) kernels.

    A TF32 convolution's roofline bound is against the tensor-core peak, so its achieved fraction
    ``u`` is 2-8x lower than the same layer's in fp32 while the board draws as much or more (the A30
    sits near its 165 W cap on either): one line per family over both would under-price TF32 layers.
    """
    return np.array([f"{f}_tc" if t and f in ("gemm", "conv") else f for f, t in zip(family, tc, strict=True)],
                    dtype=object)


def _power_coefficients(frac: np.ndarray, util: np.ndarray, family: np.ndarray, mask: np.ndarray) -> dict:
    """Per family ``[a, b]`` of ``frac = a + b·u`` by least squares over the rows in ``mask``."""
    from scipy.optimize import least_squares

    out = {}
    for f in ("gemm", "conv", "elementwise", "reduction", "gemm_tc", "conv_tc"):
        sel = mask & (family == f) & np.isfinite(frac)
        if sel.sum() < 5:
            continue
        u, y = util[sel], frac[sel]
        A = np.column_stack([np.ones(sel.sum()), u])
        start, *_ = np.linalg.lstsq(A, y, rcond=None)
        # the board saturates at its limit: fit the clipped line min(1, max(0, a + b·u)) itself, so that
        # rows pinned at the cap (the A30 on nearly every layer) do not drag the line below it
        fit = least_squares(lambda c, u=u, y=y: np.clip(c[0] + c[1] * u, 0.0, 1.0) - y, start, loss="soft_l1", f_scale=0.1)
        coef = fit.x if fit.success else start
        out[f] = [round(float(coef[0]), 4), round(float(coef[1]), 4)]
    out.setdefault("elementwise", out.get("reduction", [0.3, 0.5]))
    return out


def power_targets(df, pred: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Board-power fraction between idle (profile or 25% TDP) and TDP, and measured utilisation t_bound/t."""
    from fxenergy.hardware import load_profile
    from fxenergy.perf.device import device_spec

    frac = np.full(len(df), np.nan)
    for prof_name in df["profile"].unique():
        sel = (df["profile"] == prof_name).to_numpy()
        dev = device_spec(load_profile(prof_name))
        frac[sel] = np.clip((df["mean_power_W"].to_numpy(float)[sel] - dev.idle_w) / (dev.power_limit_w - dev.idle_w), 0, 1)
    util = np.clip(pred["t_bound"] / df["time_per_iter_s"].to_numpy(float), 0, 1)
    return frac, util


def predict_rows(df, pred: dict[str, np.ndarray], comp: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Predicted time (s) and energy (J) per row under fitted components."""
    from fxenergy.hardware import load_profile
    from fxenergy.perf.device import device_spec

    t = np.where(pred["tc"], pred["t_raw"] * comp["tensor_core_factor"], pred["t_raw"])
    floor = np.array([floor_for(comp, p, f) for p, f in zip(df["profile"], floor_keys(df, pred), strict=True)])
    t = np.maximum(np.maximum(t, pred["t_bound"]), floor)
    u = np.clip(pred["t_bound"] / t, 0, 1)
    e = np.zeros(len(df))
    from fxenergy.perf.model import power_coefficients_for

    for prof_name in df["profile"].unique():
        sel = (df["profile"] == prof_name).to_numpy()
        dev = device_spec(load_profile(prof_name))
        for i in np.flatnonzero(sel):
            a, b = power_coefficients_for(comp["power"], prof_name, pred["family"][i], bool(pred["tc"][i]))
            frac = min(1.0, max(0.0, a + b * u[i]))
            e[i] = (dev.idle_w + (dev.power_limit_w - dev.idle_w) * frac) * t[i]
    return t, e


def evaluate(df, pred: dict[str, np.ndarray], floor_families: tuple[str, ...] = ()) -> dict[str, Any]:  # noqa: ANN001
    """Leave-one-model-out over model sums: refit the components without the model, predict its sum."""
    models = segment_models(df)
    meas_t = df["time_per_iter_s"].to_numpy(float)
    meas_e = df["energy_per_iter_mJ"].to_numpy(float) / 1e3
    out = []
    names = _model_names(df, models)
    for m in np.unique(models):
        test = models == m
        comp = fit_components(df, pred, ~test, floor_families)
        t, e = predict_rows(df, pred, comp)
        out.append({"setting": df["setting"][test].iloc[0], "model": names[m], "layers": int(test.sum()),
                    "time_err_pct": float((t[test].sum() / meas_t[test].sum() - 1) * 100),
                    "energy_err_pct": float((e[test].sum() / meas_e[test].sum() - 1) * 100)})
    return {"models": out}


def _model_names(df, models: np.ndarray) -> dict[int, str]:  # noqa: ANN001
    names = {}
    for m in np.unique(models):
        sel = np.flatnonzero(models == m)
        first = str(df["label"].iloc[sel[0]])[:40]
        names[int(m)] = f"#{int(m)} {len(sel)} layers, first {first}"
    return names


# extra conv training rows: fp32 without TF32 (A30_no_tc, RTX 2080 Ti) and TF32 by default (A30), the only
# tensor-core conv measurements in the data
CONV_SETTINGS = ("A30_no_tc", "RTX2080TI", "A30")
FOLDS = 3


def conv_training_rows(df, mask: np.ndarray) -> tuple[list, np.ndarray, list[str], np.ndarray]:  # noqa: ANN001
    """Conv kernels, measured seconds, profile names and TF32 flags of the Nicolai conv rows in ``mask``."""
    sel = np.flatnonzero(mask & df["setting"].isin(CONV_SETTINGS).to_numpy() & (df["op_type"] == "Conv2d").to_numpy())
    kern = [df["kernels"].iloc[i][0] for i in sel]
    tf32 = (df["setting"].to_numpy()[sel] == "A30")
    return kern, df["time_per_iter_s"].to_numpy(float)[sel], [df["profile"].iloc[i] for i in sel], tf32


def fit_nicolai(params: dict[str, Any], refit_conv=None,  # noqa: ANN001
                floor_families: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fit the Nicolai components on every row and validate leave-one-model-out; print a summary.

    ``refit_conv(extra_kernels, extra_seconds, extra_profiles)`` returns a conv forest (JSON) fitted on
    NeuSight plus the given Nicolai conv rows; with it the conv forest takes the Nicolai fp32 conv rows,
    and the validation refits it in grouped folds by model (fold = model id mod 3), so that no model's
    own layers predict it.
    """
    from fxenergy.perf.datasets import load_nicolai_ops

    df = load_nicolai_ops()
    models = segment_models(df)
    if refit_conv is not None:
        pred = None
        for fold in range(FOLDS):
            test = (models % FOLDS) == fold
            p = dict(params, families=dict(params["families"], conv=refit_conv(*conv_training_rows(df, ~test))))
            pf = row_predictions(df, p)
            if pred is None:
                pred = pf
            else:
                for k in pred:
                    pred[k][test] = pf[k][test]
        params["families"]["conv"] = refit_conv(*conv_training_rows(df, np.ones(len(df), dtype=bool)))
    else:
        pred = row_predictions(df, params)
    assert pred is not None  # FOLDS >= 1
    comp = fit_components(df, pred, np.ones(len(df), dtype=bool), floor_families)
    ev = evaluate(df, pred, floor_families)
    rep, dev_err = summarise(ev["models"])
    comp["backward_factor"] = {}
    return {"params": comp, "report": {"rows": len(df), "components": comp, "leave_one_model_out": rep},
            "device_errors": dev_err}


def summarise(models: list[dict]) -> tuple[dict, dict]:
    rep, dev_err = {}, {}
    print(f"\nNicolai leave-one-model-out (model sums of distinct layers), APE %\n{'setting':<12}{'models':>7}"
          f"{'time med':>10}{'mean':>7}{'worst':>8}{'energy med':>12}{'mean':>7}{'worst':>8}")
    for s in sorted({r["setting"] for r in models}):
        rs = [r for r in models if r["setting"] == s]
        te = np.abs([r["time_err_pct"] for r in rs])
        ee = np.abs([r["energy_err_pct"] for r in rs])
        rep[s] = {"models": len(rs), "time_median": float(np.median(te)), "time_mean": float(te.mean()),
                  "time_worst": float(te.max()), "energy_median": float(np.median(ee)), "energy_mean": float(ee.mean()),
                  "energy_worst": float(ee.max())}
        worst = rs[int(np.argmax(te))]
        print(f"{s:<12}{len(rs):>7}{np.median(te):>10.1f}{te.mean():>7.1f}{te.max():>8.1f}{np.median(ee):>12.1f}"
              f"{ee.mean():>7.1f}{ee.max():>8.1f}   worst time: {worst['model']} ({worst['time_err_pct']:+.1f}%)")
    for s, prof in (("A30", "a30"), ("RTX2080TI", "rtx-2080-ti")):
        if s in rep:
            dev_err[prof] = rep[s]["time_mean"]
    return rep, dev_err
