"""Grouped convolutions on a CPU (issue 12, session cpu7): an activation-bytes term and an FMA term, fitted
on microbenchmarks of group width 8..64, instead of one FLOP curve fitted on group width 8."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fxenergy.calibrate.benches import benchmarks
from fxenergy.calibrate.fitting import fit_cpu_perf, fit_grouped
from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, grouped_time_s, kernel_class
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 150e9, 50e9
MEM_LAW = PowerLaw(0.08, 1.5, 0.8, "MB")  # per-element cost of the grouped path: ~4 GB/s on large tensors
FMA_RATE = 0.8 * PEAK_FLOPS


def _grouped(b: int, c: int, side: int, gw: int, t: float = 0.0) -> Measurement:
    flops = 2 * b * c * gw * 9 * side * side
    nbytes = 4 * (2 * b * c * side * side + c * gw * 9 + c)
    shape = ((b, c, side, side), (c, gw, 3, 3), (c,))
    return Measurement("convolution", "conv2d grouped k3", shape, {"stride": 1, "padding": 1, "groups": c // gw},
                       flops, 0, nbytes, t, 5, 10)


def _truth(m: Measurement) -> float:
    return float(grouped_time_s(MEM_LAW.duration_s(m.work("bytes"), PEAK_BPS), m.flops / FMA_RATE))


ROWS = [dataclasses.replace(m, median_s=_truth(m)) for m in
        (_grouped(b, c, s, gw) for b in (1, 4, 16) for c, s, gw in
         ((48, 56, 8), (128, 28, 16), (240, 14, 24), (512, 14, 32), (432, 28, 48), (1024, 7, 64)))]


def test_quick_calibration_times_grouped_convs_of_several_group_widths() -> None:
    widths = {b.inputs[1][1] for b in benchmarks(quick=True) if b.op.startswith("conv2d grouped")}
    assert {8, 16, 24, 32, 48} <= widths  # the group width decides which term dominates


def test_fit_grouped_recovers_both_terms() -> None:
    law, rate, stats = fit_grouped(ROWS, PEAK_FLOPS, PEAK_BPS, 0.0, "soft_l1")
    assert rate == pytest.approx(FMA_RATE, rel=0.05)  # the grid steps 0.025 of the peak
    pred = np.array([grouped_time_s(law.duration_s(m.work("bytes"), PEAK_BPS), m.flops / rate) for m in ROWS])
    assert np.allclose(pred, [m.median_s for m in ROWS], rtol=0.1)
    assert stats["rows"] == len(ROWS) and stats["mdape"] < 0.05


def test_a_flop_curve_cannot_tell_group_widths_apart_and_the_two_terms_can(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same tensor (4 x 512 x 14 x 14), group width 8 vs 64: 8x the FLOPs; time grows far less than 8x."""
    import fxenergy.calibrate.fitting as fitting

    narrow, wide = _truth(_grouped(4, 512, 14, 8)), _truth(_grouped(4, 512, 14, 64))
    assert 1.5 < wide / narrow < 5
    off = fit_cpu_perf(ROWS, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)  # the default: one FLOP law
    assert off.grouped_flops_per_s == 0.0 and off.laws["conv_grouped"].unit == "GFLOP"
    monkeypatch.setattr(fitting, "GROUPED_BYTES_AND_FMA", True)
    perf = fit_cpu_perf(ROWS, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert perf.grouped_flops_per_s == pytest.approx(FMA_RATE, rel=0.05)
    assert perf.laws["conv_grouped"].unit == "MB"
    back = CpuPerfParams.from_dict(perf.to_dict())
    assert back.grouped_flops_per_s == perf.grouped_flops_per_s

    prof = load_profile("xeon-gold-5120")
    times = {}
    for gw in (8, 64):
        conv = torch.nn.Conv2d(512, 512, 3, padding=1, groups=512 // gw, bias=True)
        trace, cost = priced_nodes(conv, (4, 512, 14, 14))[0]
        assert kernel_class(trace, cost) == "conv_grouped"
        times[gw] = CpuDurationModel(prof, 2, back).node_duration(trace, cost, 1)[0]
    truth = {8: narrow, 64: wide}
    for gw in (8, 64):
        assert times[gw] == pytest.approx(truth[gw], rel=0.15)

    # a parameter set from before (a FLOP curve for conv_grouped, no FMA rate) keeps pricing by FLOPs
    old = dataclasses.replace(back, laws={**back.laws, "conv_grouped": PowerLaw(0.23, 20.0, 0.63, "GFLOP")},
                              grouped_flops_per_s=0.0)
    assert "grouped_flops_per_s" not in old.to_dict()
    t_old = CpuDurationModel(prof, 2, old).node_duration(trace, cost, 1)[0]
    assert t_old == pytest.approx(PowerLaw(0.23, 20.0, 0.63, "GFLOP").duration_s(cost.flops, PEAK_FLOPS), rel=0.05)


def test_convolutions_fault_their_blocked_copies_above_the_mmap_threshold() -> None:
    from fxenergy.calibrate.fitting import fault_s
    from fxenergy.perf.cpu import MMAP_THRESHOLD_BYTES, conv_reorder_bytes, fresh_output_bytes

    trace, _ = priced_nodes(torch.nn.Conv2d(48, 48, 3, padding=1, groups=6), (64, 48, 56, 56))[0]
    act = 4 * 64 * 48 * 56 * 56  # 36.75 MiB in and out
    assert act > MMAP_THRESHOLD_BYTES
    assert fresh_output_bytes(trace) == act and conv_reorder_bytes(trace) == 2 * act  # 3x in all, as measured
    assert conv_reorder_bytes(trace, threshold=2 * act) == 0
    # the calibration takes the same three copies off a convolution measurement before fitting
    m = dataclasses.replace(_grouped(64, 48, 56, 8, 0.1), out_bytes=act)
    assert fault_s(m, 1e-9) == pytest.approx(3 * act * 1e-9)
    small = dataclasses.replace(_grouped(4, 48, 56, 8, 0.1), out_bytes=act // 16)
    assert fault_s(small, 1e-9) == 0.0
