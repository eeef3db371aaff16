"""CPU kernel classes and calibrated terms added for batch-1 accuracy (issue 12): stem convolutions,
activation functions, GEMV weight streaming, GEMM weight packing, the measured DRAM floor."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fxenergy.calibrate.fitting import (
    fit_cpu_perf,
    fit_law_plus_per_byte,
    fit_weight_law,
    measurement_class,
    param_bytes,
    weight_stream_bytes_per_s,
)
from fxenergy.calibrate.timing import Measurement
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, conv_class, kernel_class
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 150e9, 50e9


def _linear(m: int, kin: int, kout: int, t: float) -> Measurement:
    flops = 2 * m * kin * kout
    nbytes = 4 * (m * kin + kin * kout + kout + m * kout)
    return Measurement("matmul", "linear", ((m, kin), (kout, kin), (kout,)), {}, flops, 0, nbytes, t, 5, 10)


def test_conv_classes_split_stems_from_dense() -> None:
    assert conv_class((32, 3, 3, 3), 1) == "conv_stem"  # RGB in: a stem
    assert conv_class((768, 3, 16, 16), 1) == "conv_stem"  # ViT's patchify
    assert conv_class((64, 64, 3, 3), 1) == "conv_dense"
    assert conv_class((64, 64, 1, 1), 1) == "conv_pointwise"
    assert conv_class((96, 1, 3, 3), 96) == "conv_depthwise"


class _Acts(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x) + torch.relu(x) * torch.sigmoid(x) - torch.tanh(x)


def test_activation_functions_are_their_own_class() -> None:
    classes = {cost.op: kernel_class(trace, cost) for trace, cost in priced_nodes(_Acts(), (2, 64))}
    assert classes["silu"] == classes["sigmoid"] == "activation"
    assert classes["relu"] == classes["add"] == classes["mul"] == "elementwise"
    assert classes["tanh"] == "tanh"
    gelu = Measurement("elementwise", "gelu", ((1024,),), {}, 0, 1024, 8192, 1e-5, 5, 10)
    add = dataclasses.replace(gelu, op="add")
    assert measurement_class(gelu) == "activation" and measurement_class(add) == "elementwise"


def test_weight_law_fits_gemv_rows_and_floors_batch1_linears() -> None:
    # batch-1 linears streaming their weights at 20 GB/s after a 20 us fixed cost
    rows = [_linear(1, k, n, 20e-6 + 4 * k * n / 20e9) for k, n in ((256, 256), (1280, 1000), (3072, 768),
                                                                     (2048, 1000), (25088, 4096))]
    assert param_bytes(rows[-1]) == 4 * (25088 * 4096 + 4096)
    assert weight_stream_bytes_per_s(rows) == pytest.approx(np.median([param_bytes(m) / m.median_s for m in rows[1:]]))
    law = fit_weight_law(rows, PEAK_BPS)
    assert law is not None
    big = param_bytes(rows[-1])
    assert law.duration_s(big, PEAK_BPS) == pytest.approx(rows[-1].median_s, rel=0.05)
    assert fit_weight_law(rows[:3], PEAK_BPS) is None  # under 4 rows: no curve

    # a model's batch-1 linear with VGG fc6's weights is never faster than the weights stream
    prof = load_profile("xeon-gold-5120")
    trace, cost = priced_nodes(torch.nn.Linear(25088, 4096), (1, 25088))[0]
    fast = {"matmul": PowerLaw(0.9, 50.0, 0.5, "GFLOP")}  # a FLOP curve alone: ~1.5 ms for 0.2 GFLOP
    base = CpuPerfParams(fast, PEAK_FLOPS, PEAK_BPS, 2, 2e-6, dram_bytes_per_s=200e9)  # a floor out of the way
    t_flops = CpuDurationModel(prof, 2, base).node_duration(trace, cost, 1)[0]
    t_weights = CpuDurationModel(prof, 2, dataclasses.replace(base, weight_law=law)).node_duration(trace, cost, 1)[0]
    assert t_flops < 0.005 < law.duration_s(cost.param_bytes_read, PEAK_BPS) <= t_weights


def test_packing_cost_is_recovered_from_gemm_rows() -> None:
    law = PowerLaw(0.8, 2.0, 0.5, "GFLOP")
    s_per_byte = 1e-10  # 0.1 ms per MB of weights
    rows = [_linear(m, k, n, 0.0) for m in (8, 32, 128, 512) for k, n in ((256, 256), (3072, 768), (1280, 1000))]
    work = np.array([m.flops for m in rows], dtype=float)
    weights = np.array([param_bytes(m) for m in rows], dtype=float)
    t = law.duration_s(work, PEAK_FLOPS) + weights * s_per_byte
    fitted, s = fit_law_plus_per_byte(work, weights, t, PEAK_FLOPS, "soft_l1")
    assert s == pytest.approx(s_per_byte, abs=0.011e-9)  # the grid step is 0.01 ms per MB
    assert np.allclose(fitted.duration_s(work, PEAK_FLOPS) + weights * s, t, rtol=0.1)


def test_fit_cpu_perf_records_the_new_terms_and_they_round_trip() -> None:
    law = PowerLaw(0.8, 2.0, 0.5, "GFLOP")
    gemv = [_linear(1, k, n, 4 * k * n / 15e9) for k, n in ((768, 768), (1280, 1000), (3072, 768), (2048, 1000))]
    gemm = [_linear(m, k, n, 0.0) for m in (8, 64, 512) for k, n in ((768, 768), (3072, 768))]
    gemm = [dataclasses.replace(r, median_s=float(law.duration_s(r.flops, PEAK_FLOPS)) + param_bytes(r) * 5e-11)
            for r in gemm]
    perf = fit_cpu_perf(gemv + gemm, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6, dram_bytes_per_s=20e9)
    assert perf.weight_law is not None and perf.dram_bytes_per_s == 20e9
    assert perf.packing_s_per_byte == pytest.approx(5e-11, abs=0.011e-9)
    assert perf.weight_bytes_per_s == pytest.approx(15e9, rel=0.01)
    back = CpuPerfParams.from_dict(perf.to_dict())
    assert (back.weight_law, back.packing_s_per_byte, back.dram_bytes_per_s) == (
        perf.weight_law, perf.packing_s_per_byte, perf.dram_bytes_per_s)
    with pytest.raises(UserInputError, match="packing_s_per_byte"):
        CpuPerfParams.from_dict({**perf.to_dict(), "packing_s_per_byte": -1.0})


def test_stem_falls_back_to_the_dense_scale_of_older_parameter_sets() -> None:
    """Parameter sets fitted before stems had a class (the shipped Xeon set) price them as dense convs."""
    prof = load_profile("xeon-gold-5120")
    trace, cost = priced_nodes(torch.nn.Conv2d(3, 64, 3, padding=1), (1, 3, 64, 64))[0]
    assert kernel_class(trace, cost) == "conv_stem"
    spec = CpuDurationModel(prof, 2).node_duration(trace, cost, 1)[0]
    scaled = CpuPerfParams({}, PEAK_FLOPS, PEAK_BPS, 2, prof.kernel_launch_overhead_s, scales={"conv_dense": 2.0})
    t = CpuDurationModel(prof, 2, scaled).node_duration(trace, cost, 1)[0]
    dispatch = prof.kernel_launch_overhead_s
    assert math.isclose(t - dispatch, 2.0 * (spec - dispatch), rel_tol=1e-6)
