"""Dense convolutions on a CPU (issue 12, session cpu13): a FLOP law plus a cost per weight byte (oneDNN's reorder of
the weights on every eager call), fitted jointly by the calibration (``fxenergy.calibrate.fitting.WEIGHT_TERM_CLASSES``);
files without the term price as before."""

from __future__ import annotations

import pytest
import torch

import fxenergy.calibrate.fitting as fitting
from fxenergy.calibrate.fitting import fit_cpu_perf, measurement_class
from fxenergy.calibrate.timing import Measurement
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, kernel_class
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 300e9, 80e9
RATE_FLOPS = 180e9  # what a dense 3x3 convolution computes at, whatever its size
WEIGHT_S_PER_BYTE = 2e-10  # the weight reorder: 0.2 ms per MB (5 GB/s; 0.16 measured here, cpu13)
FIXED_S = 20e-6


def _truth_s(flops: float, weight_bytes: float) -> float:
    return flops / RATE_FLOPS + weight_bytes * WEIGHT_S_PER_BYTE + FIXED_S


def _dense_rows() -> list[Measurement]:
    """3x3 convolutions of the calibration's kind: ResNet stages (small weights) and the last stages' small spatial
    sizes (512 and 1024 channels at 2..7 px: large weights for their FLOPs)."""
    out = []
    for b in (1, 4, 16, 64):
        for cin, cout, side in ((64, 64, 56), (128, 128, 28), (256, 256, 14), (128, 32, 28), (512, 512, 7),
                                (512, 512, 4), (1024, 1024, 2)):
            flops = 2 * b * cout * cin * 9 * side * side
            if flops > 6e9:
                continue
            weights = 4 * (cout * cin * 9 + cout)
            nbytes = 4 * (b * cin * side * side + b * cout * side * side) + weights
            out.append(Measurement("convolution", "conv2d dense k3", ((b, cin, side, side), (cout, cin, 3, 3), (cout,)),
                                   {"stride": 1, "padding": 1, "groups": 1}, flops, 0, nbytes,
                                   _truth_s(flops, weights), 5, 10, out_bytes=4 * b * cout * side * side))
    return out


def _conv_node(cin: int, cout: int, shape: tuple[int, ...]):  # noqa: ANN202
    (node,) = priced_nodes(torch.nn.Conv2d(cin, cout, 3, padding=1), shape)
    return node


def test_dense_fit_finds_the_weight_cost_and_prices_small_convolutions_with_small_weights() -> None:
    rows = _dense_rows()
    assert {measurement_class(m) for m in rows} == {"conv_dense"}
    perf = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert perf.weight_s_per_byte["conv_dense"] == pytest.approx(WEIGHT_S_PER_BYTE, rel=0.3)
    model = CpuDurationModel(load_profile("xeon-gold-5120"), 2, perf)
    trace, cost = _conv_node(64, 64, (2, 64, 24, 24))  # ResNet-34's first stage at batch 2 / 96 px: 0.085 GFLOP
    assert kernel_class(trace, cost) == "conv_dense"
    truth = _truth_s(cost.flops, cost.param_bytes_read)
    t = model.node_duration(trace, cost, 1)[0]
    assert t == pytest.approx(truth, rel=0.25)

    # without the term (the fit before cpu13), the heavy-weight rows drag the FLOP law's small end: too slow
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "WEIGHT_TERM", False)
        plain = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert not plain.weight_s_per_byte
    t_plain = CpuDurationModel(load_profile("xeon-gold-5120"), 2, plain).node_duration(trace, cost, 1)[0]
    assert t_plain > 1.3 * truth
    assert abs(t / truth - 1) < abs(t_plain / truth - 1)


def test_weight_term_round_trips_and_older_files_price_as_before() -> None:
    perf = fit_cpu_perf(_dense_rows(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    d = perf.to_dict()
    assert d["weight_s_per_byte"] == {"conv_dense": perf.weight_s_per_byte["conv_dense"]}
    assert CpuPerfParams.from_dict(d).weight_s_per_byte == perf.weight_s_per_byte
    older = CpuPerfParams.from_dict({k: v for k, v in d.items() if k != "weight_s_per_byte"})  # a file before the term
    assert older.weight_s_per_byte == {}
    trace, cost = _conv_node(512, 512, (1, 512, 7, 7))
    prof = load_profile("xeon-gold-5120")
    t_new = CpuDurationModel(prof, 2, perf).node_duration(trace, cost, 1)[0]
    t_old = CpuDurationModel(prof, 2, older).node_duration(trace, cost, 1)[0]
    assert t_new - t_old == pytest.approx(cost.param_bytes_read * perf.weight_s_per_byte["conv_dense"], rel=1e-6)
    for bad in ({"conv_dense": -1.0}, {"conv_dense": float("inf")}, {"no_such_class": 1e-10}):
        with pytest.raises(UserInputError):
            CpuPerfParams.from_dict({**d, "weight_s_per_byte": bad})
