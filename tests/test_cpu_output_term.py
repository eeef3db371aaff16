"""Stems and reductions on a CPU (issue 12, session cpu12): a law plus a cost per output byte, fitted jointly by the
calibration (``fxenergy.calibrate.fitting.OUTPUT_TERM_CLASSES``); files without the term price as before."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import fxenergy.calibrate.fitting as fitting
from fxenergy.calibrate.benches import benchmarks
from fxenergy.calibrate.fitting import fit_cpu_perf, measurement_class
from fxenergy.calibrate.timing import Measurement
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, kernel_class
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 150e9, 80e9
ROW_S = 4e-9  # per output row (4 bytes) of a short reduction
STREAM_BPS = 35e9


def _reductions() -> list[Measurement]:
    """``mean`` over H, W: bytes at 35 GB/s plus 4 ns per output; long rows are bytes-bound, short rows row-bound."""
    out = []
    for b in (1, 4, 16):
        for c, side in ((32, 112), (64, 56), (256, 14), (1024, 7), (960, 4), (1280, 2)):
            nin, nout = b * c * side * side, b * c
            nbytes = 4 * (nin + nout)
            t = nbytes / STREAM_BPS + nout * ROW_S + 3e-6
            out.append(Measurement("reduction", "mean", ((b, c, side, side),), {}, 0, nin, nbytes, t, 5, 10,
                                   out_bytes=4 * nout))
    return out


def _nodes(module: torch.nn.Module, shape: tuple[int, ...]):  # noqa: ANN202
    return priced_nodes(module, shape)


def test_reduction_fit_finds_the_per_output_cost_and_prices_short_rows() -> None:
    rows = _reductions()
    assert {measurement_class(m) for m in rows} == {"reduction"}
    perf = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    s = perf.out_s_per_byte["reduction"]
    assert s == pytest.approx(ROW_S / 4, rel=0.3)  # per output byte: 4 ns per 4-byte row
    model = CpuDurationModel(load_profile("xeon-gold-5120"), 2, perf)
    (trace, cost), = _nodes(torch.nn.AdaptiveAvgPool2d(1), (16, 1280, 2, 2))  # 20480 rows of 4 elements
    assert kernel_class(trace, cost) == "reduction"
    truth = (cost.bytes_read + cost.bytes_written) / STREAM_BPS + 16 * 1280 * ROW_S
    t = model.node_duration(trace, cost, 1)[0]
    assert t == pytest.approx(truth, rel=0.35)

    # without the term (the fit before cpu12), one bytes law prices the row-bound shape far too fast
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "OUTPUT_TERM", False)
        plain = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert not plain.out_s_per_byte
    t_plain = CpuDurationModel(load_profile("xeon-gold-5120"), 2, plain).node_duration(trace, cost, 1)[0]
    assert abs(t / truth - 1) < abs(t_plain / truth - 1)


def test_output_term_round_trips_and_older_files_price_as_before() -> None:
    perf = fit_cpu_perf(_reductions(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    d = perf.to_dict()
    assert d["out_s_per_byte"] == {"reduction": perf.out_s_per_byte["reduction"]}
    assert CpuPerfParams.from_dict(d).out_s_per_byte == perf.out_s_per_byte
    old = {k: v for k, v in d.items() if k != "out_s_per_byte"}  # a file written before the term
    older = CpuPerfParams.from_dict(old)
    assert older.out_s_per_byte == {}
    (trace, cost), = _nodes(torch.nn.AdaptiveAvgPool2d(1), (16, 1280, 2, 2))
    prof = load_profile("xeon-gold-5120")
    t_new = CpuDurationModel(prof, 2, perf).node_duration(trace, cost, 1)[0]
    t_old = CpuDurationModel(prof, 2, older).node_duration(trace, cost, 1)[0]
    assert t_new - t_old == pytest.approx(cost.bytes_written * perf.out_s_per_byte["reduction"], rel=1e-6)
    for bad in ({"reduction": -1.0}, {"reduction": float("nan")}, {"no_such_class": 1e-9}):
        with pytest.raises(UserInputError):
            CpuPerfParams.from_dict({**d, "out_s_per_byte": bad})


def test_a_class_without_a_law_of_its_own_takes_no_output_term() -> None:
    perf = fit_cpu_perf(_reductions(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    # the term belongs to the reduction law: with the law gone (priced by a fallback), the term is not added
    no_law = dataclasses.replace(perf, laws={k: v for k, v in perf.laws.items() if k != "reduction"})
    (trace, cost), = _nodes(torch.nn.AdaptiveAvgPool2d(1), (16, 1280, 2, 2))
    prof = load_profile("xeon-gold-5120")
    t = CpuDurationModel(prof, 2, no_law).node_duration(trace, cost, 1)[0]
    t_none = CpuDurationModel(prof, 2, dataclasses.replace(no_law, out_s_per_byte={})).node_duration(trace, cost, 1)[0]
    assert t == t_none


def test_quick_calibration_measures_3x3_and_7x7_stems_above_batch_1() -> None:
    stems = {(b.inputs[0][0], b.inputs[1][2]) for b in benchmarks(quick=True)
             if b.family == "convolution" and b.inputs[0][1] == 3}
    for batch in (4, 16):
        assert {(batch, 3), (batch, 7)} <= stems
