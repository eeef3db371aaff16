"""Per-tile wave model of GEMM and convolution kernels: a bounded utilisation learned across GPUs.

The idea is NeuSight's (ASPLOS 2025: tiles, waves, a learned utilisation bounded by the peaks); the
code and the exact form are ours. For a kernel ``batch × (m × k) @ (k × n)`` (a convolution as its
implicit GEMM) and each candidate output tile ``tm × tn`` of :data:`TILES`:

* ``tiles = batch · ceil(m / tm) · ceil(n / tn)``, ``waves = ceil(tiles / SMs)`` (one tile per SM
  at a time: the last, partial wave costs a whole wave);
* one tile's own roofline on one SM: ``t_tile = max(2·tm·tn·k / (peak / SMs),
  es·(k·(tm + tn) + tm·tn) / (bandwidth / SMs))`` (its padded FLOPs against the SM's share of the
  peak, the A and B panels it reads and the C tile it writes against the SM's share of DRAM
  bandwidth);
* ``t = waves · t_tile / u`` with the utilisation ``u = s1 / (1 + s2 / waves)``, ``s1 = sigmoid(h1)``
  in (0, 1) and ``s2 = softplus(h2) >= 0`` from a small MLP over dimensionless features of the kernel,
  the tile and the device's spec sheet: ``u`` never exceeds 1, and it rises with the number of waves
  (fill/drain and launch cost amortised);
* the kernel's time is the smallest over the candidate tiles (the library's heuristic picks a good
  tile; which one is not known for a GPU never measured).

Since ``u <= 1``, ``waves·SMs >= tiles`` and padded tiles do at least the kernel's work, the predicted
time is never below the kernel's roofline bound. Because the MLP predicts a fraction of the device's
own peaks (at its effective clock, see :mod:`fxenergy.perf.device`), a new GPU needs only its spec
sheet. Evaluated with numpy (weights as JSON, no pickle); fitted with torch in
:mod:`fxenergy.perf.fitting`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fxenergy.perf.device import DeviceSpec
from fxenergy.perf.kernels import Kernel

__all__ = ["TILES", "TILE_FEATURES", "TileMLP", "tile_inputs"]

TILES = ((128, 128), (128, 64), (64, 128), (64, 64), (128, 32), (32, 128), (32, 32))
TILE_FEATURES = ("log2_tm", "log2_tn", "log2_k", "log2_waves", "wave_eff", "pad_eff", "log2_tile_intensity_over_balance",
                 "log2_bytes_over_l2", "log2_batch", "log2_window", "grouped", "tensor_cores", "backward",
                 "log2_sms", "log2_l2_per_sm_kib", "log2_balance", "clock_ghz")


def tile_inputs(kernels: Sequence[Kernel], dev: DeviceSpec, peak_flops: np.ndarray, tensor_cores: np.ndarray,
                es: np.ndarray | None = None, device_features: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, log_t0, waves)`` of shape ``(kernels, tiles, features)``, ``(kernels, tiles)`` twice.

    ``log_t0 = log(waves · t_tile)`` (seconds) is the time at utilisation 1; ``peak_flops`` is each
    kernel's matrix ceiling under the math modes. Device features are zero when ``device_features`` is
    False (the same column layout either way).
    """
    n_k = len(kernels)
    b = np.array([k.batch for k in kernels], dtype=float)[:, None]
    m = np.array([k.m for k in kernels], dtype=float)[:, None]
    n = np.array([k.n for k in kernels], dtype=float)[:, None]
    kk = np.array([k.k for k in kernels], dtype=float)[:, None]
    if es is None:
        es = np.array([float(k.dtype.itemsize) for k in kernels])
    es = np.asarray(es, dtype=float)[:, None]
    tm = np.array([t[0] for t in TILES], dtype=float)[None, :]
    tn = np.array([t[1] for t in TILES], dtype=float)[None, :]
    tiles = b * np.ceil(m / tm) * np.ceil(n / tn)
    waves = np.ceil(tiles / dev.sms)
    peak_sm = np.asarray(peak_flops, dtype=float)[:, None] / dev.sms
    bw_sm = dev.bandwidth_bytes_per_s / dev.sms
    tile_flops = 2.0 * tm * tn * kk
    tile_bytes = es * (kk * (tm + tn) + tm * tn)
    t_tile = np.maximum(tile_flops / peak_sm, tile_bytes / bw_sm)
    log_t0 = np.log(waves * t_tile)
    balance = np.asarray(peak_flops, dtype=float)[:, None] / dev.bandwidth_bytes_per_s
    total_bytes = es * b * (m * kk + kk * n + m * n)
    shape = (n_k, len(TILES))
    window = np.array([k.window for k in kernels], dtype=float)[:, None]
    flags = [np.array([float(getattr(k, a)) for k in kernels])[:, None] for a in ("grouped",)]
    bw_flag = np.array([float(k.backward) for k in kernels])[:, None]
    dev_cols = [np.log2(dev.sms), np.log2(dev.l2_bytes / dev.sms / 1024.0), np.log2(balance), dev.clock_hz / 1e9]
    if not device_features:
        dev_cols = [0.0, 0.0, np.zeros_like(balance), 0.0]
    cols = [np.log2(tm), np.log2(tn), np.log2(kk), np.log2(waves), tiles / (waves * dev.sms),
            (m * n) / (np.ceil(m / tm) * tm * np.ceil(n / tn) * tn),
            np.log2((tile_flops / tile_bytes) / balance), np.log2(total_bytes / dev.l2_bytes), np.log2(b),
            np.log2(window), *flags, np.asarray(tensor_cores, dtype=float)[:, None], bw_flag, *dev_cols]
    X = np.stack([np.broadcast_to(c, shape) for c in cols], axis=-1)
    return X, log_t0, waves


def _act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    return np.maximum(x, 0.0)


class TileMLP:
    """The fitted MLP (weights from JSON) and the tile-minimum prediction of log kernel time."""

    def __init__(self, data: Mapping[str, Any]):
        self.features = tuple(data["features"])
        self.mean = np.asarray(data["mean"], dtype=float)
        self.std = np.asarray(data["std"], dtype=float)
        self.layers = [(np.asarray(w, dtype=float), np.asarray(c, dtype=float)) for w, c in data["layers"]]
        self.activation = str(data.get("activation", "tanh"))
        self.device_features = bool(data.get("device_features", True))
        if tuple(TILE_FEATURES) != self.features:
            raise ValueError("tile model features do not match this fxenergy version")

    def log_util(self, X: np.ndarray, waves: np.ndarray) -> np.ndarray:
        h = (X - self.mean) / self.std
        for i, (w, c) in enumerate(self.layers):
            h = h @ w + c
            if i < len(self.layers) - 1:
                h = _act(self.activation, h)
        s1 = -np.logaddexp(0.0, -h[..., 0])  # log sigmoid
        s2 = np.logaddexp(0.0, h[..., 1])  # softplus
        return s1 - np.log1p(s2 / waves)

    def predict_log_s(self, kernels: Sequence[Kernel], dev: DeviceSpec, peak_flops: np.ndarray,
                      tensor_cores: np.ndarray) -> np.ndarray:
        """log of each kernel's predicted time (s), minimum over the candidate tiles."""
        if not len(kernels):
            return np.zeros(0)
        X, log_t0, waves = tile_inputs(kernels, dev, peak_flops, tensor_cores, device_features=self.device_features)
        return (log_t0 - self.log_util(X, waves)).min(axis=1)
