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

__all__ = ["MODEL_FAMILIES", "GEOMETRY", "design", "fit_forest", "HYPER"]

MODEL_FAMILIES = ("gemm", "conv", "elementwise", "reduction")  # gather and copy use the elementwise model
GEOMETRY = {"gemm": True, "conv": True, "elementwise": False, "reduction": False}
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


def fit_forest(X: np.ndarray, y: np.ndarray, seed: int = 0, **hyper):
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = {**HYPER, **hyper}
    return HistGradientBoostingRegressor(loss="absolute_error", random_state=seed, **params).fit(X, y)
