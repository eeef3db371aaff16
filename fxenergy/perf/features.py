"""Dimensionless features of a kernel on a device, and its roofline bound.

The learned model predicts ``log(t / t_bound)``, the slowdown over the roofline bound
``t_bound = max(FLOPs / peak, bytes / bandwidth)``, from features that mean the same on every GPU:

* size: ``log10(t_bound / 1 µs)`` (where the launch floor bites), ``log2(bytes / L2)`` (L2-resident
  working sets are faster than DRAM), arithmetic intensity over the device's balance point;
* GEMM/conv (NeuSight's idea, our own code): the output is cut into tiles, tiles are spread over
  the SMs in waves, and a last partial wave wastes SMs. For tile shapes 128×128, 64×64 and 32×32:
  ``log2(waves)`` and the wave efficiency ``tiles / (ceil(waves)·SMs)``; plus padding efficiency
  of 128-tiles, ``log2 k``, window, grouped, tensor-core and backward flags;
* memory-bound kernels: elements per resident thread (``elements / (SMs·2048)``), FLOPs per element,
  the innermost/reduced length, rows per SM, and whether it is a softmax (same bytes and arithmetic as
  a layer norm, different kernels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fxenergy.perf.device import DeviceSpec
from fxenergy.perf.kernels import Kernel

__all__ = ["GEMM_FEATURES", "MEMORY_FEATURES", "GEMM_FOREST_DROPPED", "bounds_s", "features", "design_features",
           "forest_features"]

_TILES = ((128, 128), (64, 64), (32, 32))
GEMM_FEATURES = ("log_tbound_us", "log2_bytes_over_l2", "log2_intensity_over_balance",
                 *[f"{s}{a}x{b}" for a, b in _TILES for s in ("log2_waves_", "wave_eff_")],
                 "pad_eff_128", "log2_k", "log2_m", "log2_n", "log2_batch", "log2_window", "grouped", "tensor_cores",
                 "backward")
MEMORY_FEATURES = ("log_tbound_us", "log2_bytes_over_l2", "log2_intensity_over_balance", "log2_elems_per_thread",
                   "log2_flops_per_elem", "log2_cols", "log2_rows_per_sm", "backward", "softmax")
# Columns of the design the GEMM forest does not use: working set over L2 and the batch count. The A100's 40 MB L2
# puts its GEMMs where the other GPUs have none, and the forest learned GPU-specific levels there; the batch count
# still enters through the tile and wave counts. Together with leaving the clock-collapsed rows out of the fit
# (fitting.THROTTLED, needed once the forest can no longer tell GPUs apart), leave-one-GPU-out on
# gpu-kernels-neusight goes 18.2 -> 17.2 (mean over held-out GPUs of the median APE; 18.7 -> 17.2 on another
# sample): scripts/gpu_gemm_logo.py. Conv keeps every column (no gain there).
GEMM_FOREST_DROPPED = ("log2_bytes_over_l2", "log2_batch")


def design_features(geometry: bool) -> tuple[str, ...]:
    """The columns :func:`features` computes: GEMM/conv (``geometry``) or memory-kernel ones."""
    return GEMM_FEATURES if geometry else MEMORY_FEATURES


def forest_features(family: str, dropped: tuple[str, ...] = GEMM_FOREST_DROPPED) -> tuple[str, ...]:
    """The features a family's forest is fitted on (a subset of :func:`design_features`)."""
    if family == "gemm":
        return tuple(f for f in GEMM_FEATURES if f not in dropped)
    return GEMM_FEATURES if family == "conv" else MEMORY_FEATURES


def _peaks(kernels: Sequence[Kernel], dev: DeviceSpec, matmul_precision: str, conv_tf32: bool) -> tuple[np.ndarray, np.ndarray]:
    cache: dict[tuple[str, torch.dtype], tuple[float, float]] = {}
    mat, tc = np.empty(len(kernels)), np.zeros(len(kernels))
    for i, k in enumerate(kernels):
        key = (k.family, k.dtype)
        if key not in cache:
            cache[key] = (dev.peak_for(k.family, k.dtype, matmul_precision, conv_tf32),
                          float(dev.uses_tensor_cores(k.family, k.dtype, matmul_precision, conv_tf32)))
        mat[i], tc[i] = cache[key]
    return mat, tc


def bounds_s(kernels: Sequence[Kernel], dev: DeviceSpec, matmul_precision: str = "highest",
             conv_tf32: bool = True) -> np.ndarray:
    """Roofline bound of each kernel (s): max(matrix/peak + vector/fp32 peak, bytes/bandwidth)."""
    mat, _ = _peaks(kernels, dev, matmul_precision, conv_tf32)
    return _bounds(kernels, dev, mat)


def _bounds(kernels: Sequence[Kernel], dev: DeviceSpec, mat: np.ndarray) -> np.ndarray:
    flops = np.array([k.flops for k in kernels], dtype=float)
    ew = np.array([k.ew_flops for k in kernels], dtype=float)
    nbytes = np.array([k.bytes for k in kernels], dtype=float)
    compute = flops / mat + ew / dev.peak_flops["fp32"]
    return np.maximum(np.maximum(compute, nbytes / dev.bandwidth_bytes_per_s), 1e-12)


def features(kernels: Sequence[Kernel], dev: DeviceSpec, *, geometry: bool, matmul_precision: str = "highest",
             conv_tf32: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(X, t_bound_s)``: one feature row per kernel (GEMM features if ``geometry`` else memory ones)."""
    mat, tc = _peaks(kernels, dev, matmul_precision, conv_tf32)
    tb = _bounds(kernels, dev, mat)
    nbytes = np.maximum(np.array([k.bytes for k in kernels], dtype=float), 1.0)
    flops = np.array([k.flops + k.ew_flops for k in kernels], dtype=float)
    balance = mat / dev.bandwidth_bytes_per_s
    common = [np.log10(tb * 1e6), np.log2(nbytes / dev.l2_bytes), np.log2(np.maximum(flops / nbytes, 1e-4) / balance)]
    bw = np.array([float(k.backward) for k in kernels])
    if geometry:
        b = np.array([k.batch for k in kernels], dtype=float)
        m = np.array([k.m for k in kernels], dtype=float)
        n = np.array([k.n for k in kernels], dtype=float)
        kk = np.array([k.k for k in kernels], dtype=float)
        cols = []
        for tm, tn in _TILES:
            tiles = b * np.ceil(m / tm) * np.ceil(n / tn)
            waves = tiles / dev.sms
            cols += [np.log2(waves), tiles / (np.ceil(waves) * dev.sms)]
        pad = (m * n) / (np.ceil(m / 128) * 128 * np.ceil(n / 128) * 128)
        window = np.array([k.window for k in kernels], dtype=float)
        grouped = np.array([float(k.grouped) for k in kernels])
        X = np.column_stack([*common, *cols, pad, np.log2(kk), np.log2(m), np.log2(n), np.log2(b), np.log2(window),
                             grouped, tc, bw])
    else:
        rows = np.array([k.rows for k in kernels], dtype=float)
        cols_ = np.array([k.cols for k in kernels], dtype=float)
        elems = rows * cols_
        X = np.column_stack([*common, np.log2(np.maximum(elems, 1) / (dev.sms * 2048.0)),
                             np.log2(np.maximum(flops / np.maximum(elems, 1), 1e-3)), np.log2(cols_),
                             np.log2(rows / dev.sms), bw, np.array([float(k.softmax) for k in kernels])])
    return X, tb


def chip_key(profile: object) -> str | None:
    """``"<architecture>:<SMs>"``: GPUs sharing it have the same die (e.g. every V100 SKU, every A100)."""
    arch = getattr(profile, "architecture", None)
    sms = getattr(profile, "compute_units", None)
    return f"{arch}:{int(sms)}" if arch and sms else None


def correction_log(curve: dict, t_bound_s: np.ndarray) -> np.ndarray:
    """A per-chip correction of log time, piecewise linear in ``log10 t_bound`` (constant past the ends)."""
    x = np.asarray(curve["log10_tbound_s"], dtype=float)
    y = np.asarray(curve["log_factor"], dtype=float)
    return np.interp(np.log10(np.maximum(t_bound_s, 1e-12)), x, y)
