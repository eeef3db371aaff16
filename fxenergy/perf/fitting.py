"""Fitting the learned GPU duration model (used by scripts/fit_gpu_perf.py and benchmarks/gpu_logo.py).

Target: ``y = log(t_measured / t_bound)``; a gradient-boosted tree ensemble per family maps the
dimensionless features of :mod:`fxenergy.perf.features` to ``y``. Prediction clamps ``y >= 0``,
so no duration falls below the roofline bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fxenergy.hardware import load_profile
from fxenergy.perf.device import device_spec
from fxenergy.perf.features import features
from fxenergy.perf.kernels import Kernel

__all__ = ["MODEL_FAMILIES", "GEOMETRY", "design", "fit_forest", "HYPER", "MEMORY_MODEL_FAMILIES", "op_floors",
           "lead_fraction", "harness_time", "memory_harness", "uncensored", "throttled", "GEMM_BOUND_MULT",
           "gemm_fit_rows"]

MODEL_FAMILIES = ("gemm", "conv", "elementwise", "reduction")  # gather and copy use the elementwise model
GEOMETRY = {"gemm": True, "conv": True, "elementwise": False, "reduction": False}
MEMORY_MODEL_FAMILIES = ("elementwise", "reduction")
HYPER = {"max_iter": 250, "max_depth": 6, "learning_rate": 0.08, "min_samples_leaf": 20, "l2_regularization": 1.0}


def design(kernels: Sequence[Kernel], seconds: np.ndarray, devices: Sequence[str], geometry: bool,
           matmul_precision: str = "highest", conv_tf32: bool = False,
           offset_s: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, t_bound)`` over rows of several devices (fp32 data: conv TF32 off, as measured).

    ``offset_s`` is a timing overhead added to every measurement (NeuSight's harness floor: CUDA events
    around one Python call add that call's launch cost); the target is the kernel time without it.
    """
    xs, tbs = [], []
    order = []
    devs = np.asarray(devices)
    for name in dict.fromkeys(devices):
        idx = np.flatnonzero(devs == name)
        dev = device_spec(load_profile(name))
        X, tb = features([kernels[int(i)] for i in idx], dev, geometry=geometry, matmul_precision=matmul_precision,
                         conv_tf32=conv_tf32)
        xs.append(X)
        tbs.append(tb)
        order.append(idx)
    idx = np.concatenate(order)
    X = np.empty((len(kernels), xs[0].shape[1]))
    tb = np.empty(len(kernels))
    X[idx] = np.vstack(xs)
    tb[idx] = np.concatenate(tbs)
    meas = np.asarray(seconds, dtype=float)
    kernel = np.maximum(meas - offset_s, 0.05 * meas)
    return X, np.log(kernel / tb), tb


# -- NeuSight's timing harness for memory kernels ---------------------------------------------------------
#
# Each NeuSight row times one Python call between two CUDA events. The host needs ``floor`` seconds to get
# from the first event to the second whatever the kernel does (the flat run of the smallest rows); the
# kernel is launched ``lead`` seconds after the first event and the second event waits for it. So
#
#     measured = max(floor, lead + t_kernel)
#
# not ``floor + t_kernel``: on the A100 an ``add`` stays at its 26 us floor until the DRAM bound passes
# ~17 us, and rows just above the floor are the kernel plus the lead only. ``floor`` differs per op (the
# Python path of ``F.relu`` is longer than ``torch.add``'s) and per host; ``lead = lead_fraction · floor``
# is estimated from the data (:func:`lead_fraction`). Rows at the floor are censored (they say only
# ``lead + t_kernel <= floor``) and are left out of the memory-family fits; every other row is kept.

CENSOR_MULT = 1.25  # a row counts as above its floor when measured > 1.25 x floor (the floor's spread is a few %)
# GEMM rows (gpu10) are timed by the same harness, against their own op's floor (NeuSight's `linear` call costs
# 46-101 us, `bmm` 28-53 us, `add` 25-43 us: the Python path differs). A GEMM row is fitted when its roofline
# bound is at least this share of that floor *and* it was measured above CENSOR_MULT floors. The bound is known
# before the run, so the rows kept do not depend on how fast the kernel happened to be, except between this share
# and (CENSOR_MULT - lead) ~ 0.7 floors, where rows at the floor are censored (they only bound the kernel).
# Before gpu10, GEMM rows were kept when measured above 3x the `add` floor: small GEMMs then stayed in the fit only
# when they ran slow, and the forest priced a 3 us GEMM at 25x its bound, the harness's size.
GEMM_BOUND_MULT = 0.25


def op_floors(seconds: np.ndarray, devices: Sequence[str], ops: Sequence[str]) -> dict[tuple[str, str], float]:
    """The harness floor of each (device, op): the 5th percentile of that op's measured times there."""
    devs, op = np.asarray(devices), np.asarray(ops)
    out = {}
    for d in dict.fromkeys(devices):
        for o in dict.fromkeys(ops):
            sel = (devs == d) & (op == o)
            if sel.any():
                out[(str(d), str(o))] = float(np.percentile(seconds[sel], 5))
    return out


def lead_fraction(seconds: np.ndarray, t_bound_s: np.ndarray, bytes_over_l2: np.ndarray, floor_s: np.ndarray,
                  devices: Sequence[str]) -> tuple[float, dict[str, float]]:
    """``lead / floor`` of the harness, from streaming kernels far larger than L2 (8x and more).

    Per device, on such rows measured above 1.25 floors with a DRAM bound under 30 floors: the line
    ``measured = lead + r·t_bound`` (r: the achieved slowdown over the DRAM bound), least squares on
    relative errors, once more without the rows off by more than 3 median absolute deviations. Returns the
    median over devices of ``lead / floor`` and the per-device values (NaN where fewer than 20 rows)."""
    devs = np.asarray(devices)
    per = {}
    for d in dict.fromkeys(devices):
        sel = (devs == d) & (bytes_over_l2 > 8) & uncensored(seconds, floor_s) & (t_bound_s < 30 * floor_s)
        if sel.sum() < 20:
            per[str(d)] = float("nan")
            continue
        y, tb, fl = seconds[sel], t_bound_s[sel], floor_s[sel]
        keep = np.ones(len(y), bool)
        for _ in range(2):
            A = np.column_stack([fl / y, tb / y])[keep]  # y/y = (lead/floor)·floor/y + r·tb/y
            (lead, r), *_ = np.linalg.lstsq(A, np.ones(keep.sum()), rcond=None)
            res = 1.0 - (lead * fl + r * tb) / y
            mad = np.median(np.abs(res - np.median(res)))
            keep = np.abs(res - np.median(res)) <= 3 * max(mad, 1e-6)
        per[str(d)] = float(lead)
    vals = [v for v in per.values() if np.isfinite(v)]
    return (float(np.median(vals)) if vals else 0.0), per


def memory_harness(rows) -> dict:  # noqa: ANN001 - datasets.KernelRows
    """Per (device, op) harness floors of NeuSight rows and the lead fraction, from the elementwise rows."""
    fam = np.array([k.family for k in rows.kernels])
    idx = np.flatnonzero(fam == "elementwise")
    devs = np.asarray(rows.device)
    opf = op_floors(rows.seconds, rows.device, rows.op)
    ks = [rows.kernels[i] for i in idx]
    d = devs[idx]
    X, _, tb = design(ks, rows.seconds[idx], d.tolist(), False)
    fl = np.array([opf[(x, o)] for x, o in zip(d, np.asarray(rows.op)[idx])])
    lead, per = lead_fraction(rows.seconds[idx], tb, 2.0 ** X[:, 1], fl, d.tolist())
    return {"op_floor_s": opf, "lead": lead, "lead_per_device": per}


def harness_time(t_kernel_s: np.ndarray, floor_s: np.ndarray | float, lead: float) -> np.ndarray:
    """What NeuSight's harness measures for a kernel of ``t_kernel_s``: ``max(floor, lead·floor + t)``."""
    return np.maximum(floor_s, lead * np.asarray(floor_s) + t_kernel_s)


def uncensored(seconds: np.ndarray, floor_s: np.ndarray | float) -> np.ndarray:
    """Rows clearly above their harness floor (the rest only bound the kernel time from above)."""
    return np.asarray(seconds) > CENSOR_MULT * np.asarray(floor_s)


def gemm_fit_rows(seconds: np.ndarray, t_bound_s: np.ndarray, floor_s: np.ndarray | float) -> np.ndarray:
    """GEMM rows the forest is fitted on (gpu10): roofline bound at least ``GEMM_BOUND_MULT`` of the op's harness
    floor (chosen before the run) and measured clearly above that floor (below it the row is censored)."""
    return (np.asarray(t_bound_s) >= GEMM_BOUND_MULT * np.asarray(floor_s)) & uncensored(seconds, floor_s)


def fit_forest(X: np.ndarray, y: np.ndarray, seed: int = 0, **hyper):
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = {**HYPER, **hyper}
    return HistGradientBoostingRegressor(loss="absolute_error", random_state=seed, **params).fit(X, y)


def fit_tile_mlp(X: np.ndarray, log_t0: np.ndarray, waves: np.ndarray, y_log_s: np.ndarray, *, seed: int = 0,
                 hidden: int = 32, depth: int = 2, steps: int = 2500, lr: float = 0.01, weight_decay: float = 1e-4,
                 activation: str = "tanh", device_features: bool = True) -> dict:
    """Fit the per-tile utilisation MLP of :mod:`fxenergy.perf.tiles` (torch, CPU, full batch, Adam).

    Loss: mean absolute error of log time (the tile-minimum prediction against ``y_log_s``, the
    measured kernel time's log). Returns the JSON-ready weights.
    """
    import torch

    from fxenergy.perf.tiles import TILE_FEATURES

    torch.manual_seed(seed)
    flat = X.reshape(-1, X.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    xt = torch.tensor((X - mean) / std, dtype=torch.float32)
    t0 = torch.tensor(log_t0, dtype=torch.float32)
    wv = torch.tensor(waves, dtype=torch.float32)
    y = torch.tensor(y_log_s, dtype=torch.float32)
    act = torch.nn.Tanh if activation == "tanh" else torch.nn.ReLU
    mods: list = []
    width = X.shape[-1]
    for _ in range(depth):
        mods += [torch.nn.Linear(width, hidden), act()]
        width = hidden
    mods.append(torch.nn.Linear(width, 2))
    net = torch.nn.Sequential(*mods)
    last = mods[-1]
    with torch.no_grad():  # start near u = 0.7, s2 small
        last.bias.copy_(torch.tensor([1.0, -2.0]))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        h = net(xt)
        log_u = torch.nn.functional.logsigmoid(h[..., 0]) - torch.log1p(torch.nn.functional.softplus(h[..., 1]) / wv)
        pred = (t0 - log_u).min(dim=1).values
        loss = (pred - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    layers = [(m.weight.detach().numpy().T.astype(float).round(7).tolist(), m.bias.detach().numpy().astype(float).round(7).tolist())
              for m in net if isinstance(m, torch.nn.Linear)]
    return {"kind": "tile_mlp", "features": list(TILE_FEATURES), "mean": mean.tolist(), "std": std.tolist(),
            "layers": layers, "activation": activation, "device_features": device_features,
            "train_loss_mean_abs_log": float(loss.detach())}


def tile_design(kernels: Sequence[Kernel], devices: Sequence[str], matmul_precision: str = "highest",
                conv_tf32: bool = False, device_features: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, log_t0, waves)`` of :func:`fxenergy.perf.tiles.tile_inputs` over rows of several devices."""
    from fxenergy.perf.features import _peaks
    from fxenergy.perf.tiles import TILE_FEATURES, TILES, tile_inputs

    X = np.empty((len(kernels), len(TILES), len(TILE_FEATURES)))
    t0 = np.empty((len(kernels), len(TILES)))
    wv = np.empty((len(kernels), len(TILES)))
    devs = np.asarray(devices)
    for name in dict.fromkeys(devices):
        idx = np.flatnonzero(devs == name)
        dev = device_spec(load_profile(name))
        ks = [kernels[int(i)] for i in idx]
        mat, tc = _peaks(ks, dev, matmul_precision, conv_tf32)
        X[idx], t0[idx], wv[idx] = tile_inputs(ks, dev, mat, tc, device_features=device_features)
    return X, t0, wv


# Rows measured while the GPU's clock had collapsed, left out of the GEMM forest's fit (still scored when their
# GPU is held out). Read off the data (scripts/gpu_gemm_logo.py prints the evidence: achieved FLOP/s over the fp32
# peak at the profile's clock, full 128x128 waves only): the P4's `linear` falls from 0.54-0.60 at 0.3-1 ms to
# 0.16-0.24 past 100 ms while its own `bmm` climbs to 0.60-0.71 at the same durations (NeuSight's P4 throttled
# while the linear rows were taken); the P100's `linear` falls from 0.64 to 0.25-0.45 once one call runs past
# 100 ms. Kept in, a forest that cannot tell GPUs apart prices the
# biggest GEMMs of every GPU by them (an 8192^3 fp32 GEMM on an L4 at 5.8x its roofline).
THROTTLED = (("p4", "linear", 0.0), ("p100-pcie-16gb", "linear", 0.1))  # (GPU, op, kernel seconds above which)


def throttled(devices: Sequence[str], ops: Sequence[str], kernel_s: np.ndarray) -> np.ndarray:
    """Rows of :data:`THROTTLED`: (GPU, op) pairs whose kernel ran longer than the given seconds."""
    d, o, k = np.asarray(devices), np.asarray(ops), np.asarray(kernel_s)
    out = np.zeros(len(d), bool)
    for dev, op, above in THROTTLED:
        out |= (d == dev) & (o == op) & (k > above)
    return out


CORRECTION_EDGES = tuple(np.arange(-6.0, -0.99, 0.5))  # log10 of the roofline bound (s): half-decade bins
CORRECTION_MIN_ROWS = 30


def fit_correction(resid_log: np.ndarray, t_bound_s: np.ndarray) -> dict | None:
    """A per-chip correction curve: median residual ``log(t_measured / t_predicted)`` per half-decade of
    the roofline bound, at the bin's median ``log10 t_bound`` (bins with fewer than 30 rows are dropped);
    None when no bin has enough rows."""
    lb = np.log10(np.maximum(t_bound_s, 1e-12))
    xs, ys, ns = [], [], []
    edges = (-np.inf, *CORRECTION_EDGES[1:-1], np.inf)
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (lb >= lo) & (lb < hi)
        if sel.sum() >= CORRECTION_MIN_ROWS:
            xs.append(float(np.median(lb[sel])))
            ys.append(round(float(np.median(resid_log[sel])), 5))
            ns.append(int(sel.sum()))
    if not xs:
        return None
    return {"log10_tbound_s": [round(x, 4) for x in xs], "log_factor": ys, "rows": ns}
