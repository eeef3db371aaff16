"""The physical lower bound of one node's duration on a hardware profile.

Its own module because both the duration pass (:mod:`fxenergy.passes.durations`, which floors fitted laws
at it) and the learned GPU model (:mod:`fxenergy.perf.model`, which the duration pass imports) price
against it, and the bounds check (:mod:`fxenergy.predictors.bounds`) sums it: one definition for all three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from fxenergy.perf.kernels import winograd_saved_flops

if TYPE_CHECKING:
    from fxenergy.hardware import HardwareProfile
    from fxenergy.records import NodeCost, NodeTrace

__all__ = ["LowerBound"]


class LowerBound:
    """The physical lower bound of a node's duration on ``profile``: its FLOPs at the device's highest
    peak (fp16 on a GPU, when higher), plus nothing for bytes while its working set fits in the largest
    cache (a cache may serve it), else its bytes at DRAM bandwidth. No run can beat it; the bounds
    check (:mod:`fxenergy.predictors.bounds`) sums it, and fitted laws are never priced below it.

    Given the node's trace, the FLOPs are the fewest any algorithm needs: a 3x3 stride-1 convolution
    (forward or backward-data) may run as Winograd with ``1 / WINOGRAD_MULTIPLY_FACTOR`` of the direct
    multiplies (:func:`fxenergy.perf.kernels.winograd_saved_flops`); measured cuDNN convolutions run
    faster than their direct-count bound. The FLOPs the cost pass reports are not changed.
    """

    def __init__(self, profile: HardwareProfile):
        peak = profile.peak_flops_for(torch.float32)
        if profile.is_gpu:
            peak = max(peak, profile.peak_flops_for(torch.float16))
        self.peak_flops = peak
        self.largest_cache_bytes = max((c.total_bytes for c in profile.caches), default=0)
        self.bandwidth = profile.memory_bandwidth_bytes_per_s

    def __call__(self, cost: NodeCost, trace: NodeTrace | None = None) -> float:
        flops = float(cost.flops)
        if trace is not None and flops:
            flops = max(flops - winograd_saved_flops(trace.calls), 0.0)
        t = (flops + cost.elementwise_flops) / self.peak_flops
        ws = cost.bytes_read + cost.bytes_written
        if ws > self.largest_cache_bytes:
            t = max(t, ws / self.bandwidth)
        return t
