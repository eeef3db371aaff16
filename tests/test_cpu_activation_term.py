"""1x1 convolutions on a CPU (issue 12, session cpu14): a FLOP law plus a cost per activation byte beyond what a cache
holds (oneDNN's copies of NCHW activations into its blocked layout and back, at the bandwidth of the level the tensors
sit in), fitted jointly by the calibration (``fxenergy.calibrate.fitting.ACTIVATION_TERM_CLASSES``); files without the
term price as before."""

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
RATE_FLOPS = 120e9  # what a 1x1 convolution computes at, whatever its size
ACT_S_PER_BYTE = 2e-10  # 0.2 ms per MB of activations beyond the cache (0.18-0.22 fitted here, cpu14)
FREE_BYTES = 2.0**23  # activation bytes the cache holds free of it (4-8 MiB fitted here)
FIXED_S = 20e-6


def _truth_s(flops: float, act_bytes: float) -> float:
    return flops / RATE_FLOPS + max(act_bytes - FREE_BYTES, 0.0) * ACT_S_PER_BYTE + FIXED_S


def _pointwise_rows() -> list[Measurement]:
    """1x1 convolutions of the calibration's kind: bottlenecks (many channels, small spatial) and mobile networks'
    expand / project layers (few channels, large spatial: many activation bytes for their FLOPs)."""
    out = []
    for b in (1, 4, 16, 64):
        for cin, cout, side in ((64, 256, 56), (512, 128, 28), (2048, 512, 7), (96, 24, 56), (240, 40, 28),
                                (384, 1536, 14), (16, 96, 112), (1024, 256, 14)):
            flops = 2 * b * cout * cin * side * side
            if flops > 6e9:
                continue
            weights = 4 * (cout * cin + cout)
            act = 4 * (b * cin * side * side + b * cout * side * side)
            out.append(Measurement("convolution", "conv2d pointwise k1", ((b, cin, side, side), (cout, cin, 1, 1), (cout,)),
                                   {"stride": 1, "padding": 0, "groups": 1}, flops, 0, act + weights,
                                   _truth_s(flops, act), 5, 10, out_bytes=4 * b * cout * side * side))
    return out


def _pw_node(cin: int, cout: int, shape: tuple[int, ...]):  # noqa: ANN202
    (node,) = priced_nodes(torch.nn.Conv2d(cin, cout, 1), shape)
    return node


def _act_bytes(cost) -> float:  # noqa: ANN001
    return float(cost.bytes_read + cost.bytes_written - cost.param_bytes_read)


def test_pointwise_fit_finds_the_activation_cost_and_prices_large_batches() -> None:
    rows = _pointwise_rows()
    assert {measurement_class(m) for m in rows} == {"conv_pointwise"}
    perf = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert perf.act_s_per_byte["conv_pointwise"] == pytest.approx(ACT_S_PER_BYTE, rel=0.3)
    assert perf.act_free_bytes["conv_pointwise"] == FREE_BYTES
    prof = load_profile("xeon-gold-5120")
    model = CpuDurationModel(prof, 2, perf)
    big = _pw_node(16, 96, (64, 16, 64, 64))  # an expand layer of a mobile network at batch 64: ~75 MB of activations
    small = _pw_node(16, 96, (1, 16, 64, 64))  # the same layer at batch 1: ~1.2 MB, held by the cache
    assert kernel_class(*big) == "conv_pointwise"
    for trace, cost in (big, small):
        truth = _truth_s(cost.flops, _act_bytes(cost))
        assert model.node_duration(trace, cost, 1)[0] == pytest.approx(truth, rel=0.25)

    # without the term (the fit before cpu14), one FLOP law cannot see the bytes: the large-batch layer comes out fast
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "ACTIVATION_TERM", False)
        plain = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert not plain.act_s_per_byte
    trace, cost = big
    truth = _truth_s(cost.flops, _act_bytes(cost))
    t_plain = CpuDurationModel(prof, 2, plain).node_duration(trace, cost, 1)[0]
    assert t_plain < 0.8 * truth


def test_activation_term_round_trips_and_older_files_price_as_before() -> None:
    perf = fit_cpu_perf(_pointwise_rows(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    d = perf.to_dict()
    assert d["act_s_per_byte"] == {"conv_pointwise": perf.act_s_per_byte["conv_pointwise"]}
    back = CpuPerfParams.from_dict(d)
    assert (back.act_s_per_byte, back.act_free_bytes) == (perf.act_s_per_byte, perf.act_free_bytes)
    older = CpuPerfParams.from_dict({k: v for k, v in d.items() if k not in ("act_s_per_byte", "act_free_bytes")})
    assert older.act_s_per_byte == {} and older.act_free_bytes == {}
    trace, cost = _pw_node(384, 1536, (16, 384, 14, 14))  # 24 MB of activations, compute-bound: no floor binds
    prof = load_profile("xeon-gold-5120")
    t_new = CpuDurationModel(prof, 2, perf).node_duration(trace, cost, 1)[0]
    t_old = CpuDurationModel(prof, 2, older).node_duration(trace, cost, 1)[0]
    extra = (_act_bytes(cost) - perf.act_free_bytes["conv_pointwise"]) * perf.act_s_per_byte["conv_pointwise"]
    assert extra > 0
    assert t_new - t_old == pytest.approx(extra, rel=1e-6)
    for key, bad in (("act_s_per_byte", {"conv_pointwise": -1.0}), ("act_s_per_byte", {"conv_pointwise": float("nan")}),
                     ("act_free_bytes", {"conv_pointwise": -1.0}), ("act_s_per_byte", {"no_such_class": 1e-10})):
        with pytest.raises(UserInputError):
            CpuPerfParams.from_dict({**d, key: bad})
