"""An achieved-bandwidth law for memory-bound kernels (elementwise, reductions/softmax/normalisation).

A few parameters shared by every GPU, fitted on gpu-kernels-neusight (scripts/fit_gpu_perf.py):

    t_kernel = max(t_bound, m_kind · t_dram / (eta · s(ws))),   t_dram = bytes / DRAM bandwidth,
    s(ws) = 1 + g / (1 + ws / L2)

* ``eta``: the fraction of the spec-sheet DRAM bandwidth a streaming kernel of the family reaches;
* ``s(ws)``: a working set well inside L2 streams up to ``1 + g`` times faster (never below the
  roofline bound: the prediction is clamped there);
* ``m_kind`` (reductions): 1 for a layer norm's rows, ``m_softmax_short`` for softmax rows of at
  most 1024 elements (PyTorch keeps such a row in registers), ``m_softmax_long`` for longer rows (the
  row is read again).

The law covers what it was fitted on (:func:`law_covers`): every elementwise kernel (gather and copy use
it too), and of the reductions the softmax and layer-norm rows; other reductions (batch norm, pooling,
sums, backward kernels) keep the reduction forest: on the per-layer Nicolai rows (A30, RTX 2080 Ti)
the law fitted on layer norms prices batch norm 25-30% fast where the forest was within about 10%.

Leave-one-GPU-out it transfers better than the boosted trees it replaces for these families
(docs/validation.md, "GPU memory-bound families across GPUs"): with five GPUs, trees learn which GPU
a row came from (through the SM count in their features) and carry that GPU's bandwidth to the next.
``harness_lead``: NeuSight's timing harness adds a lead of about half a call floor in front of the kernel
(fitting.harness_time); the law fits a correction to that lead, in floors, as a timing term of the
harness: it is kept for the record and never added at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fxenergy.perf.device import DeviceSpec
from fxenergy.perf.kernels import Kernel

__all__ = ["MemoryLaw", "SOFTMAX_SHORT_COLS", "law_kinds", "law_covers", "fit_memory_law"]

SOFTMAX_SHORT_COLS = 1024  # PyTorch's persistent softmax keeps rows up to 1024 elements in registers


def law_covers(family: str, kernels: Sequence[Kernel]) -> np.ndarray:
    """Kernels the law of ``family`` prices: every elementwise one; softmax and layer-norm reductions."""
    if family != "reduction":
        return np.ones(len(kernels), dtype=bool)
    return np.array([k.softmax or k.layer_norm for k in kernels], dtype=bool)


def law_kinds(kernels: Sequence[Kernel]) -> np.ndarray:
    """Per kernel: 0 (elementwise, norm, other reductions), 1 (softmax rows <= 1024), 2 (longer softmax rows)."""
    out = np.zeros(len(kernels), dtype=int)
    for i, k in enumerate(kernels):
        if k.softmax:
            out[i] = 1 if k.cols <= SOFTMAX_SHORT_COLS else 2
    return out


@dataclass(frozen=True)
class MemoryLaw:
    eta: float
    g: float
    m_softmax_short: float = 1.0
    m_softmax_long: float = 1.0
    harness_lead: float = 0.0  # fitted correction of NeuSight's harness lead (in call floors); not used at run time

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemoryLaw:
        law = cls(**{k: float(data[k]) for k in ("eta", "g", "m_softmax_short", "m_softmax_long", "harness_lead")})
        if not (0.0 < law.eta <= 1.0 and law.g >= 0.0 and law.m_softmax_short > 0 and law.m_softmax_long > 0):
            raise ValueError(f"memory law out of range: {law}")
        return law

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in asdict(self).items()}

    def kernel_s(self, t_dram_s: np.ndarray, ws_over_l2: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """The law before the clamp at the roofline bound."""
        m = np.array([1.0, self.m_softmax_short, self.m_softmax_long])[kinds]
        return m * np.asarray(t_dram_s) / (self.eta * (1.0 + self.g / (1.0 + np.asarray(ws_over_l2))))

    def slowdown(self, kernels: Sequence[Kernel], dev: DeviceSpec, t_bound_s: np.ndarray) -> np.ndarray:
        """``t_kernel / t_bound`` per kernel, at least 1."""
        nbytes = np.array([k.bytes for k in kernels], dtype=float)
        t = self.kernel_s(nbytes / dev.bandwidth_bytes_per_s, nbytes / dev.l2_bytes, law_kinds(kernels))
        return np.maximum(t / np.asarray(t_bound_s), 1.0)


def fit_memory_law(t_kernel_s: np.ndarray, t_dram_s: np.ndarray, t_bound_s: np.ndarray, ws_over_l2: np.ndarray,
                   kinds: np.ndarray, floor_s: np.ndarray) -> MemoryLaw:
    """Least squares on log time (soft L1, scale 0.1) over rows above their harness floor.

    ``t_kernel_s``: measured minus the harness lead; ``floor_s``: each row's call floor, the unit of the
    fitted lead correction (the prediction compared is ``harness_lead·floor + law``)."""
    from scipy.optimize import least_squares

    has = [bool((kinds == j).any()) for j in (1, 2)]

    def unpack(th: np.ndarray) -> MemoryLaw:
        m = iter(np.exp(th[3:]))
        return MemoryLaw(float(np.exp(th[0])), float(np.exp(th[2])),
                         float(next(m)) if has[0] else 1.0, float(next(m)) if has[1] else 1.0, float(np.exp(th[1])))

    def res(th: np.ndarray) -> np.ndarray:
        law = unpack(th)
        pred = np.maximum(t_bound_s, law.harness_lead * floor_s + law.kernel_s(t_dram_s, ws_over_l2, kinds))
        return np.log(pred / t_kernel_s)

    n_m = sum(has)
    x0 = np.concatenate([[np.log(0.8), np.log(0.1), np.log(0.3)], np.zeros(n_m)])
    lo = np.concatenate([[np.log(0.2), np.log(1e-4), np.log(1e-3)], np.full(n_m, np.log(0.5))])
    hi = np.concatenate([[0.0, np.log(5.0), np.log(20.0)], np.full(n_m, np.log(8.0))])
    return unpack(least_squares(res, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1).x)
