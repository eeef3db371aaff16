"""Depthwise convolutions on a CPU priced over the bytes they move (issue 12, session cpu10), and the heap churn
faults a calibration's large depthwise rows pay, taken off them before fitting."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fxenergy.calibrate.fitting import conv_heap_churn_bytes, fault_s, fit_cpu_perf
from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import HEAP_TRIM_BYTES, MMAP_THRESHOLD_BYTES, CpuDurationModel, kernel_class
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 150e9, 50e9
BYTES_LAW = PowerLaw(0.15, 2.0, 0.9, "MB")  # a depthwise conv moving its activations at a few GB/s


def _dw(b: int, c: int, side: int, k: int) -> Measurement:
    flops = 2 * b * c * k * k * side * side
    out = 4 * b * c * side * side
    nbytes = 2 * out + 4 * (c * k * k + c)
    shape = ((b, c, side, side), (c, 1, k, k), (c,))
    t = float(BYTES_LAW.duration_s(nbytes, PEAK_BPS))
    return Measurement("convolution", f"conv2d depthwise k{k}", shape, {"stride": 1, "padding": k // 2, "groups": c},
                       flops, 0, nbytes, t, 5, 10, out_bytes=out)


ROWS = [_dw(b, c, s, k) for b in (1, 4, 16) for c, s in ((32, 56), (192, 28), (384, 14)) for k in (3, 7)]


def _node(module: torch.nn.Module, shape: tuple[int, ...]):  # noqa: ANN202
    return priced_nodes(module, shape)[0]


def test_depthwise_law_runs_over_bytes_and_prices_kernel_sizes_by_their_bytes() -> None:
    """A 3x3 and a 7x7 depthwise conv of the same tensor move the same bytes for 5x the FLOPs: a bytes law fitted
    on both prices both, which one FLOP law cannot."""
    perf = fit_cpu_perf(ROWS, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert perf.laws["conv_depthwise"].unit == "MB"
    prof = load_profile("xeon-gold-5120")
    model = CpuDurationModel(prof, 2, perf)
    t = {}
    for k in (3, 7):
        trace, cost = _node(torch.nn.Conv2d(192, 192, k, padding=k // 2, groups=192), (4, 192, 28, 28))
        assert kernel_class(trace, cost) == "conv_depthwise"
        t[k] = model.node_duration(trace, cost, 1)[0]
        truth = BYTES_LAW.duration_s(cost.bytes_read + cost.bytes_written, PEAK_BPS)
        assert t[k] == pytest.approx(truth, rel=0.1)
    assert t[7] / t[3] < 1.3

    # a calibration file from before (a FLOP law for conv_depthwise) keeps pricing by FLOPs: the law's unit decides
    old = dataclasses.replace(perf, laws={**perf.laws, "conv_depthwise": PowerLaw(0.23, 89.0, 0.97, "GFLOP")})
    trace, cost = _node(torch.nn.Conv2d(192, 192, 3, padding=1, groups=192), (4, 192, 28, 28))
    t_old = CpuDurationModel(prof, 2, old).node_duration(trace, cost, 1)[0]
    assert t_old == pytest.approx(PowerLaw(0.23, 89.0, 0.97, "GFLOP").duration_s(cost.flops, PEAK_FLOPS), rel=0.05)


def test_heap_churn_of_a_large_depthwise_row_is_taken_off_before_fitting() -> None:
    """16 x 32 x 112 x 112 (24.5 MiB; input copy + output + output copy = 73.5 MiB > the 64 MiB trim threshold):
    measured 73.4 MiB faulted per call; 4 x 32 x 112 x 112 (3 x 6.1 MiB) faulted none."""
    big, small = 16 * 32 * 112 * 112 * 4, 4 * 32 * 112 * 112 * 4
    assert 3 * big > HEAP_TRIM_BYTES and big < MMAP_THRESHOLD_BYTES
    assert conv_heap_churn_bytes(big, big) == 3 * big
    assert conv_heap_churn_bytes(small, small) == 0
    row, row_small = _dw(16, 32, 112, 3), _dw(4, 32, 112, 3)
    assert fault_s(row, 4e-10) == pytest.approx(3 * big * 4e-10)
    assert fault_s(row_small, 4e-10) == 0.0
    dense = dataclasses.replace(row, op="conv2d dense k3", params={"stride": 1, "padding": 1, "groups": 1},
                                shape=((16, 32, 112, 112), (32, 32, 3, 3), (32,)))
    assert fault_s(dense, 4e-10) == 0.0  # measured on depthwise convolutions only
