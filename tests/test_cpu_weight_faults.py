"""oneDNN's blocked copy of a convolution's weights faults on every call when it reaches the mmap threshold
(session cpu8): which calls run on oneDNN, the bytes charged in prediction and taken off in the calibration."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fxenergy.calibrate.fitting import fault_s
from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import load_profile
from fxenergy.perf import cpu
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, conv_uses_onednn, conv_weight_fault_bytes
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.testing import priced_nodes

W_BYTES = 4 * 1024 * 1024 * 9  # 36 MiB: a wide ResNet's last-stage 3x3


def _conv_node(x_shape: tuple[int, ...], stride: int = 1):
    return priced_nodes(torch.nn.Conv2d(1024, 1024, 3, padding=1, stride=stride), x_shape)[0]


def test_pytorch_runs_small_batch1_convolutions_natively() -> None:
    # as torch.profiler showed on this machine (mkldnn_convolution vs thnn_conv2d)
    assert not conv_uses_onednn((1, 1024, 4, 4), (1024, 1024, 3, 3))
    assert not conv_uses_onednn((1, 1024, 2, 2), (1024, 1024, 3, 3))
    assert conv_uses_onednn((1, 1024, 5, 5), (1024, 1024, 3, 3))
    assert conv_uses_onednn((4, 1024, 2, 2), (1024, 1024, 3, 3))
    assert conv_uses_onednn((1, 64, 4, 4), (64, 8, 3, 3), groups=8)
    assert not conv_uses_onednn((1, 2048, 7, 7), (512, 2048, 1, 1), threads=1)  # 1x1 on one thread: native


def test_weight_copy_faults_only_on_onednn_and_above_the_threshold() -> None:
    big, _ = _conv_node((1, 1024, 8, 8))
    native, _ = _conv_node((1, 1024, 4, 4))
    assert conv_weight_fault_bytes(big) == W_BYTES
    assert conv_weight_fault_bytes(native) == 0
    assert conv_weight_fault_bytes(big, threshold=W_BYTES + 1) == 0


def test_weight_fault_term_adds_bytes_times_measured_cost() -> None:
    trace, cost = _conv_node((1, 1024, 8, 8))
    prof = load_profile("xeon-gold-5120")
    base = CpuPerfParams({"conv_dense": PowerLaw(0.5, 3.0, 0.5, "GFLOP")}, prof.peak_flops_for(torch.float32),
                         prof.memory_bandwidth_bytes_per_s, 2, 3e-6, fault_s_per_byte=4e-10)
    t_on = CpuDurationModel(prof, 2, base).node_duration(trace, cost, 1)[0]
    try:
        cpu.WEIGHT_REORDER_FAULTS = False
        t_off = CpuDurationModel(prof, 2, base).node_duration(trace, cost, 1)[0]
    finally:
        cpu.WEIGHT_REORDER_FAULTS = True
    assert t_on - t_off == pytest.approx(4e-10 * W_BYTES, rel=1e-6)


def test_calibration_takes_the_weight_faults_off_its_rows() -> None:
    shape = ((4, 1024, 2, 2), (1024, 1024, 3, 3), (1024,))
    m = Measurement("convolution", "conv2d small-spatial k3", shape, {"stride": 1, "padding": 1, "groups": 1},
                    2 * 4 * 1024 * 1024 * 9 * 4, 0, 0, 0.025, 5, 10, out_bytes=4 * 4 * 1024 * 4)
    assert fault_s(m, 1e-9) == pytest.approx(W_BYTES * 1e-9)
    batch1 = dataclasses.replace(m, shape=((1, 1024, 2, 2), *shape[1:]))  # native path: no blocked copy
    assert fault_s(batch1, 1e-9) == 0.0
