"""1x1 convolutions on 1x1 maps (the calibration's squeeze-excitation rows) left out of the ``conv_pointwise`` law
(issue 12, session cpu20, ``fxenergy.calibrate.fitting.POINTWISE_MIN_PIXELS`` = 2): as matrix-vector products with a
large per-call cost they set the FLOP law's small end and price the 5-30 MFLOP 1x1 layers of batch-1 networks slow.
Off by default (it failed on whole development models); the default keeps every row, as before."""

from __future__ import annotations

import pytest

import fxenergy.calibrate.fitting as fitting
from fxenergy.calibrate.fitting import fit_cpu_perf, pointwise_law_rows
from fxenergy.calibrate.timing import Measurement

PEAK_FLOPS, PEAK_BPS = 300e9, 80e9
RATE_FLOPS = 100e9  # a 1x1 convolution on a real map computes at this rate, plus a fixed cost
FIXED_S = 10e-6
SE_S = 300e-6  # a squeeze-excitation 1x1 convolution costs this, whatever its FLOPs (matrix-vector, per-call cost)


def _row(b: int, cin: int, cout: int, side: int, t_s: float) -> Measurement:
    flops = 2 * b * cout * cin * side * side
    act = 4 * (b * cin * side * side + b * cout * side * side)
    return Measurement("convolution", "conv2d pointwise k1", ((b, cin, side, side), (cout, cin, 1, 1), (cout,)),
                       {"stride": 1, "padding": 0, "groups": 1}, flops, 0, act + 4 * (cout * cin + cout), t_s, 5, 10,
                       out_bytes=4 * b * cout * side * side)


def _rows() -> list[Measurement]:
    out = []
    for b in (1, 4, 16):
        for cin, cout, side in ((64, 256, 56), (512, 128, 28), (2048, 512, 7), (960, 160, 7), (240, 40, 28)):
            f = 2 * b * cout * cin * side * side
            out.append(_row(b, cin, cout, side, f / RATE_FLOPS + FIXED_S))
        for cin, cout in ((672, 168), (1152, 48)):  # on 1x1 maps: slow for their FLOPs
            out.append(_row(b, cin, cout, 1, SE_S))
    return out


def test_rows_on_1x1_maps_are_left_out_of_the_pointwise_law(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows()
    assert pointwise_law_rows(rows) == rows  # the default keeps every row
    monkeypatch.setattr(fitting, "POINTWISE_MIN_PIXELS", 2)
    kept = pointwise_law_rows(rows)
    assert len(kept) == len(rows) - 6 and all(m.shape[0][2] > 1 for m in kept)
    assert pointwise_law_rows([r for r in rows if r.shape[0][2] == 1][:3]) == [r for r in rows if r.shape[0][2] == 1][:3]


@pytest.mark.parametrize("flops", [5e6, 15.7e6, 30e6])
def test_small_pointwise_layers_are_priced_by_the_rows_on_real_maps(flops: float, monkeypatch: pytest.MonkeyPatch) -> None:
    truth = flops / RATE_FLOPS + FIXED_S
    monkeypatch.setattr(fitting, "POINTWISE_MIN_PIXELS", 2)
    perf = fit_cpu_perf(_rows(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    new = float(perf.laws["conv_pointwise"].duration_s(flops, PEAK_FLOPS))
    monkeypatch.setattr(fitting, "POINTWISE_MIN_PIXELS", 0)  # the default: every row in the law
    old_perf = fit_cpu_perf(_rows(), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    old = float(old_perf.laws["conv_pointwise"].duration_s(flops, PEAK_FLOPS))
    assert new == pytest.approx(truth, rel=0.15)
    assert old > 1.2 * truth  # the squeeze-excitation rows pulled the law's small end up
    assert perf.fitted_on["in_sample"]["conv_pointwise"]["rows"] == 15
    assert old_perf.fitted_on["in_sample"]["conv_pointwise"]["rows"] == 21
