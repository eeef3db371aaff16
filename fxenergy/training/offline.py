"""Seed 002's offline training-energy estimators (del Rey et al. 2024, §4.3, RQ3.2), fitted on the del Rey runs.

Two regressions predict, before training, from the training environment and the model:

* **power-based**: average GPU power (W) of the run; energy = P̂ × the expected training duration;
* **epoch-energy-based**: average energy of one epoch (kJ, initial epochs included); energy = Ê × epochs.

Inputs (seed 002): the GPU's CUDA cores, memory (GB) and TDP (W), taken from fxenergy's hardware
profiles; host RAM (GB); the model's GFLOPs per forward pass of one sample (the dataset's Keras
convention); training and validation samples; batch size; input size (pixels per side). Each is a
kernel ridge regression (RBF kernel, standardised features and target), the model the seed selects
after comparing linear, ridge, kernel ridge and SVR (Tables 8, 9).

Shipped as JSON (``params/offline-delrey-power.json``, ``-epoch.json``), no pickle: the kernel
parameters, the dual coefficients, the support points (standardised; identical points merged, their
dual coefficients summed, which leaves every prediction unchanged) and both scalers. Refit with
``scripts/fit_training_offline.py``; the figures are in docs/validation.md
(``benchmarks/training_offline.py``).

Domain: the shipped fit saw three GPUs (RTX 3090, RTX 3070, GTX 750 Ti), one batch size (32), one
input size (128) and one dataset size; batch, input and sample counts were constant there, so the fit
cannot know their effect. :meth:`OfflineEstimator.predict` says so in its notes when an input lies
outside the fitted range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from fxenergy._files import read_package_json
from fxenergy.errors import UserInputError

__all__ = ["FEATURES", "CUDA_CORES_FALLBACK", "OfflineEstimator", "gpu_features", "load_offline",
           "offline_training_energy", "rbf_kernel"]

FEATURES = ("cuda_cores", "gpu_memory_gb", "tdp_w", "ram_gb", "gflops", "train_samples", "val_samples",
            "batch_size", "input_size")
SCHEMA = "fxenergy.predictor/1"
BACKEND = "offline-delrey"

# CUDA cores of the three GPUs of the del Rey data, for hardware profiles that do not carry ``fp32_cores``
# yet (the profiles engineer is adding it): NVIDIA spec sheets (GA102 whitepaper appendix: RTX 3090 10496,
# RTX 3070 5888 (GA104); GTX 750 Ti product page: 640).
CUDA_CORES_FALLBACK = {"rtx-3090": 10496, "rtx-3070": 5888, "gtx-750-ti": 640}


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma ||a - b||²), as scikit-learn's ``rbf`` kernel."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-gamma * np.maximum(d, 0.0))


def gpu_features(hardware: Any) -> dict[str, float]:
    """``cuda_cores``, ``gpu_memory_gb``, ``tdp_w`` of a hardware profile (name, file or object)."""
    from fxenergy.hardware import load_profile

    prof = load_profile(hardware) if isinstance(hardware, str) else hardware
    if prof.kind != "gpu":
        raise UserInputError(f"the offline training estimators describe GPUs; {prof.name} is a {prof.kind}")
    cores = getattr(prof, "fp32_cores", None) or CUDA_CORES_FALLBACK.get(prof.name)
    if not cores:
        raise UserInputError(f"hardware profile {prof.name} has no fp32_cores (CUDA cores), which the offline "
                             "estimators need; add it to the profile")
    if prof.tdp_w is None:
        raise UserInputError(f"hardware profile {prof.name} has no TDP, which the offline estimators need")
    return {"cuda_cores": float(cores), "gpu_memory_gb": prof.memory_bytes / 2**30, "tdp_w": float(prof.tdp_w)}


@dataclass(frozen=True)
class OfflineEstimator:
    """A fitted kernel ridge regression: ``y = y_mean + y_scale · K(z(x), support) @ dual_coef``."""

    target: str  # "power_w" or "epoch_energy_kj"
    gamma: float
    alpha: float
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float
    support: np.ndarray  # standardised feature rows
    dual_coef: np.ndarray
    x_min: np.ndarray
    x_max: np.ndarray
    fitted_on: Mapping[str, Any]

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        z = (x - self.x_mean) / self.x_scale
        return self.y_mean + self.y_scale * (rbf_kernel(z, self.support, self.gamma) @ self.dual_coef)

    def predict(self, features: Mapping[str, float]) -> tuple[float, list[str]]:
        missing = [f for f in FEATURES if f not in features]
        if missing:
            raise UserInputError(f"offline estimator needs {', '.join(missing)}")
        x = np.array([float(features[f]) for f in FEATURES])
        if not np.all(np.isfinite(x)) or np.any(x[[0, 1, 2, 4, 5, 7, 8]] <= 0) or x[6] < 0 or x[3] <= 0:
            raise UserInputError("offline estimator inputs must be finite and positive (validation samples >= 0)")
        notes = [f"{f} = {v:g} outside the fitted range [{lo:g}, {hi:g}]: the regression extrapolates"
                 for f, v, lo, hi in zip(FEATURES, x, self.x_min, self.x_max) if v < lo or v > hi]
        return float(self.predict_rows(x)[0]), notes

    def to_json(self) -> dict[str, Any]:
        from fxenergy import __version__

        return {"backend": BACKEND, "schema": SCHEMA, "fxenergy_version": __version__, "hardware": None,
                "params": {"target": self.target, "model": "kernel ridge", "kernel": "rbf", "gamma": self.gamma,
                           "alpha": self.alpha, "features": list(FEATURES),
                           "x_scaler": {"mean": self.x_mean.tolist(), "scale": self.x_scale.tolist()},
                           "y_scaler": {"mean": self.y_mean, "scale": self.y_scale},
                           "support_points": self.support.tolist(), "dual_coef": self.dual_coef.tolist(),
                           "feature_range": {"min": self.x_min.tolist(), "max": self.x_max.tolist()}},
                "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OfflineEstimator:
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA or data.get("backend") != BACKEND:
            raise UserInputError(f"not an {BACKEND} artifact of schema {SCHEMA}")
        p = data["params"]
        if list(p["features"]) != list(FEATURES) or p.get("kernel") != "rbf":
            raise UserInputError(f"{BACKEND} artifact has other features or kernel than this fxenergy reads")
        arr = lambda v: np.asarray(v, dtype=float)  # noqa: E731
        return cls(target=p["target"], gamma=float(p["gamma"]), alpha=float(p["alpha"]),
                   x_mean=arr(p["x_scaler"]["mean"]), x_scale=arr(p["x_scaler"]["scale"]),
                   y_mean=float(p["y_scaler"]["mean"]), y_scale=float(p["y_scaler"]["scale"]),
                   support=arr(p["support_points"]), dual_coef=arr(p["dual_coef"]),
                   x_min=arr(p["feature_range"]["min"]), x_max=arr(p["feature_range"]["max"]),
                   fitted_on=data["fitted_on"])

    @classmethod
    def from_sklearn(cls, krr: Any, x_scaler: Any, y_mean: float, y_scale: float, x_train: np.ndarray,
                     target: str, fitted_on: Mapping[str, Any]) -> OfflineEstimator:
        """From a fitted ``sklearn.kernel_ridge.KernelRidge`` (rbf) on standardised x and y."""
        z = np.asarray(krr.X_fit_, dtype=float)
        coef = np.asarray(krr.dual_coef_, dtype=float).ravel()
        uniq, inv = np.unique(np.round(z, 12), axis=0, return_inverse=True)
        merged = np.zeros(len(uniq))
        np.add.at(merged, inv.ravel(), coef)
        return cls(target=target, gamma=float(krr.gamma), alpha=float(krr.alpha),
                   x_mean=np.asarray(x_scaler.mean_, float), x_scale=np.asarray(x_scaler.scale_, float),
                   y_mean=float(y_mean), y_scale=float(y_scale), support=uniq, dual_coef=merged,
                   x_min=x_train.min(0), x_max=x_train.max(0), fitted_on=fitted_on)


@cache
def load_offline(kind: str) -> OfflineEstimator:
    """The shipped estimator: ``kind`` is ``"power"`` or ``"epoch"``."""
    if kind not in ("power", "epoch"):
        raise UserInputError(f"offline estimator kind must be 'power' or 'epoch', got {kind!r}")
    return OfflineEstimator.from_json(read_package_json("fxenergy.training", "params", f"offline-delrey-{kind}.json"))


def offline_training_energy(
    *, hardware: Any, ram_gb: float, gflops: float, train_samples: int, val_samples: int, batch_size: int,
    input_size: int, duration_s: float | None = None, epochs: int | None = None,
) -> dict[str, Any]:
    """Seed 002's offline estimates of a run's GPU energy (J).

    The power-based one needs the expected ``duration_s``; the epoch-energy-based one the ``epochs``.
    Returns ``{"power_w", "epoch_energy_j", "power_based_j", "epoch_energy_based_j", "notes"}`` (the
    run energies are None where their input is missing).
    """
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UserInputError(f"duration_s must be a positive number, got {duration_s!r}")
    if epochs is not None and (not isinstance(epochs, int) or epochs <= 0):
        raise UserInputError(f"epochs must be a positive integer, got {epochs!r}")
    feats = {**gpu_features(hardware), "ram_gb": ram_gb, "gflops": gflops, "train_samples": train_samples,
             "val_samples": val_samples, "batch_size": batch_size, "input_size": input_size}
    p, n1 = load_offline("power").predict(feats)
    e_kj, _ = load_offline("epoch").predict(feats)
    return {"power_w": p, "epoch_energy_j": e_kj * 1e3,
            "power_based_j": None if duration_s is None else p * duration_s,
            "epoch_energy_based_j": None if epochs is None else e_kj * 1e3 * epochs,
            "notes": n1}


# ---------------------------------------------------------------- the del Rey data (fitting, benchmarks)
DELREY_CSV = "training-delrey/dl-training-energy-consumption-dataset.csv"
DELREY_GPUS = {"NVIDIA GeForce RTX 3090": "rtx-3090", "NVIDIA GeForce RTX 3070": "rtx-3070",
               "NVIDIA GeForce GTX 750 Ti": "gtx-750-ti"}
# Host RAM of each environment, seed 002 §3.5: Local N and Local ML have 32 GB, the Cloud node 16 GB.
DELREY_RAM_GB = {"Cloud": 16.0, "Local ML Engineer/Gamer": 32.0, "Local Normal User": 32.0}
DELREY_INPUT_SIZE = 128  # seed 002 Table 2 / dataset card: 128x128 inputs
SPLIT_SEED, TEST_FRACTION, CV_FOLDS = 0, 0.30, 5


@dataclass(frozen=True)
class DelReyRun:
    row: int
    environment: str
    architecture: str
    hardware: str
    duration_s: float
    energy_j: float
    power_w: float
    epochs: int
    gpu_usage: float  # fraction of the run the GPU was busy (nvidia-smi)
    gpu_memory_gb: float  # average GPU memory used
    features: tuple[float, ...]

    @property
    def epoch_energy_kj(self) -> float:
        return self.energy_j / 1e3 / self.epochs


def read_delrey(data_dir: Any) -> list[DelReyRun]:
    """Every run of the del Rey processed CSV, with seed 002's offline features."""
    import csv
    from pathlib import Path

    path = Path(data_dir) / DELREY_CSV
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    gpu = {hw: gpu_features(hw) for hw in DELREY_GPUS.values()}
    runs = []
    for i, r in enumerate(rows):
        hw = DELREY_GPUS[r["gpu model"]]
        f = {**gpu[hw], "ram_gb": DELREY_RAM_GB[r["training environment"]], "gflops": float(r["GFLOPs"]),
             "train_samples": float(r["training size"]), "val_samples": float(r["validation size"]),
             "batch_size": float(r["batch size"]), "input_size": float(DELREY_INPUT_SIZE)}
        runs.append(DelReyRun(
            row=i, environment=r["training environment"], architecture=r["architecture"], hardware=hw,
            duration_s=float(r["training duration (h)"]) * 3600.0, energy_j=float(r["energy (MJ)"]) * 1e6,
            power_w=float(r["average power draw (W)"]), epochs=int(r["trained epochs"]),
            gpu_usage=float(r["gpu usage (%)"]) / 100.0, gpu_memory_gb=float(r["average memory used (MB)"]) / 1024,
            features=tuple(f[k] for k in FEATURES)))
    return runs


def split_delrey(runs: Sequence[DelReyRun]) -> tuple[list[DelReyRun], list[DelReyRun]]:
    """Seed 002's protocol: 70% for 5-fold CV and fitting, 30% held out (fixed seed, stratified by arch × GPU)."""
    rng = np.random.default_rng(SPLIT_SEED)
    groups: dict[tuple[str, str], list[DelReyRun]] = {}
    for r in runs:
        groups.setdefault((r.architecture, r.hardware), []).append(r)
    train, test = [], []
    for key in sorted(groups):
        g = groups[key]
        idx = rng.permutation(len(g))
        n_test = int(round(TEST_FRACTION * len(g)))
        test += [g[i] for i in idx[:n_test]]
        train += [g[i] for i in idx[n_test:]]
    return sorted(train, key=lambda r: r.row), sorted(test, key=lambda r: r.row)
