"""Per-byte terms anchored to the measured DRAM copy rate (issue 12, session cpu16): the dense-convolution weight term is
3 bytes moved per weight byte at the calibration's ``stream`` rate rather than chosen freely on its grid, where it was
collinear with the FLOP law's shape and jumped between calibrations of the same machine
(:data:`fxenergy.calibrate.fitting.PER_BYTE_ANCHOR`)."""

from __future__ import annotations

import numpy as np
import pytest

import fxenergy.calibrate.fitting as fitting
from fxenergy.calibrate.fitting import PACKING_GRID_S_PER_MB, anchored_grid, fit_cpu_perf
from fxenergy.calibrate.timing import Measurement

PEAK_FLOPS, PEAK_BPS, DRAM_BPS = 300e9, 80e9, 30e9
RATE_FLOPS = 200e9
WEIGHT_S_PER_BYTE = 3 / DRAM_BPS  # the reorder as the anchor prices it
FIXED_S = 20e-6
# the dense rows of a quick calibration (batch, Cin, side, Cout, kernel): few of them have weights large for their FLOPs
ROWS = ((1, 128, 28, 128, 3), (1, 512, 7, 512, 3), (1, 96, 27, 256, 5), (1, 512, 4, 512, 3), (4, 64, 56, 64, 3),
        (4, 256, 14, 256, 3), (4, 64, 56, 128, 3), (4, 128, 28, 32, 3), (4, 96, 27, 256, 5), (4, 512, 4, 512, 3),
        (4, 1024, 2, 1024, 3), (16, 64, 56, 64, 3), (16, 256, 14, 256, 3), (16, 64, 56, 128, 3), (16, 128, 28, 32, 3),
        (16, 512, 4, 512, 3), (16, 1024, 2, 1024, 3), (64, 128, 28, 32, 3), (64, 512, 4, 512, 3), (64, 1024, 2, 1024, 3))


def _rows(seed: int, noise: float = 0.25) -> list[Measurement]:
    """A quick calibration's dense convolutions: a FLOP efficiency that ramps up with the work, plus the weight cost,
    with lognormal timing noise (``noise``: SD of log time; the same row measured in session cpu15's five calibrations
    spread by a median 0.18 for convolutions, with outliers up to 2x)."""
    rng = np.random.default_rng(seed)
    out = []
    for b, cin, side, cout, k in ROWS:
        flops = 2 * b * cout * cin * k * k * side * side
        weights = 4 * (cout * cin * k * k + cout)
        nbytes = 4 * (b * cin * side * side + b * cout * side * side) + weights
        eff = 1 - np.exp(-((flops / 1e9) ** 0.5))
        t = (flops / (RATE_FLOPS * eff) + weights * WEIGHT_S_PER_BYTE + FIXED_S) * float(np.exp(rng.normal(0.0, noise)))
        out.append(Measurement("convolution", f"conv2d dense k{k}", ((b, cin, side, side), (cout, cin, k, k), (cout,)),
                               {"stride": 1, "padding": k // 2, "groups": 1}, flops, 0, nbytes, t, 5, 10,
                               out_bytes=4 * b * cout * side * side))
    return out


SEEDS = range(8)


def test_anchored_weight_term_is_the_same_in_every_noisy_calibration() -> None:
    perfs = [fit_cpu_perf(_rows(s), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6, dram_bytes_per_s=DRAM_BPS)
             for s in SEEDS]
    for perf in perfs:
        assert perf.weight_s_per_byte["conv_dense"] == pytest.approx(3 / DRAM_BPS, rel=1e-9)
        assert perf.fitted_on["per_byte_anchor"]["bytes_per_byte"]["conv_dense"] == 3.0
    with pytest.MonkeyPatch.context() as mp:  # the fit before cpu16: the term chosen freely on its grid
        mp.setattr(fitting, "PER_BYTE_ANCHOR", {})
        free = [fit_cpu_perf(_rows(s), PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6, dram_bytes_per_s=DRAM_BPS)
                for s in SEEDS]
    terms = [f.weight_s_per_byte.get("conv_dense", 0.0) for f in free]
    assert max(terms) > 1.5 * min(terms)  # the same machine, eight noisy calibrations: the free term jumps
    assert "per_byte_anchor" not in free[0].fitted_on
    # and the anchor costs the fit little where it is right: in-sample median APE within 3 points of the free fit's
    for a, f in zip(perfs, free):
        assert a.fitted_on["in_sample"]["conv_dense"]["mdape"] <= f.fitted_on["in_sample"]["conv_dense"]["mdape"] + 0.03


def test_anchored_grid_bands_and_falls_back_to_the_free_grid() -> None:
    grid = PACKING_GRID_S_PER_MB
    assert anchored_grid("conv_pointwise", grid, DRAM_BPS) == grid  # no anchor for the class
    assert anchored_grid("conv_dense", grid, 0.0) == grid  # DRAM rate unknown (older files): free as before
    assert anchored_grid("conv_dense", grid, DRAM_BPS) == pytest.approx((3 / DRAM_BPS * 1e6,))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "PER_BYTE_ANCHOR_BAND", 1.5)
        band = anchored_grid("conv_dense", grid, DRAM_BPS)
    a = 3 / DRAM_BPS * 1e6
    assert a in band and len(band) > 1 and all(a / 1.5 - 1e-15 <= g <= a * 1.5 + 1e-15 for g in band)
