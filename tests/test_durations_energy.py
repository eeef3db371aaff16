"""Duration pass (roofline, HEF) and the energy predictors, against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import fxenergy
from fxenergy.hardware import load_profile
from fxenergy.predictors.hef_law import FamilyLaw, HEFEnergy, HEFParameters, PowerLaw
from fxenergy.predictors.power import IDLE_FRACTION_ASSUMED

T4 = load_profile("t4")


def params(energy=True) -> HEFParameters:
    law = PowerLaw(eta_max=0.5, k=2.0, alpha=0.5, unit="GFLOP")
    return HEFParameters(
        name="test-set", source="test", device="t4", peak_flops=1e13, peak_bytes_per_s=1e11,
        families={"matmul": FamilyLaw(law, "flops")},
        energy=HEFEnergy(h_j=5.0, elasticity_j_per_s={"matmul": 40.0}) if energy else None,
    )


def test_roofline_linear_by_hand():
    r = fxenergy.annotate(nn.Linear(512, 512), torch.randn(64, 512), hardware=T4, predictor="roofline")
    (row,) = r.rows
    flops = 2 * 64 * 512 * 512
    moved = (64 * 512 + 512 * 512 + 512 + 64 * 512) * 4  # input, weight, bias read; output written
    assert row.flops == flops and row.bytes_read + row.bytes_written == moved
    expected = max(flops / T4.peak_flops_for(torch.float32), moved / T4.memory_bandwidth_bytes_per_s)
    expected += 1 * T4.kernel_launch_overhead_s  # one addmm kernel (the transpose is a free view)
    assert row.duration_s == pytest.approx(expected)
    # power between idle (25% of TDP assumed: T4 has no idle figure) and TDP, by utilisation
    idle = IDLE_FRACTION_ASSUMED * T4.tdp_w
    u = (expected - T4.kernel_launch_overhead_s) / expected
    assert row.energy_j == pytest.approx((idle + (T4.tdp_w - idle) * u) * expected)
    assert any("idle power" in n for n in r.info["energy_notes"])


def test_hef_duration_and_energy_by_hand(tmp_path):
    p = params()
    path = tmp_path / "p.json"
    import json

    path.write_text(json.dumps(p.to_dict()))
    r = fxenergy.annotate(nn.Linear(1024, 1024), torch.randn(256, 1024), hardware=T4, predictor="hef", params=str(path))
    linear = next(x for x in r.rows if x.op == "addmm")
    c = 2 * 256 * 1024 * 1024  # FLOPs; 0.537 GFLOP
    eta = 0.5 * (1 - math.exp(-2.0 * (c / 1e9) ** 0.5))
    t = c / (1e13 * eta)
    assert linear.duration_s == pytest.approx(t)
    assert linear.energy_j == pytest.approx(40.0 * t)  # elasticity (W) x duration
    overhead = next(x for x in r.rows if x.phase == "overhead")
    assert overhead.energy_j == 5.0
    assert r.totals.energy_j == pytest.approx(sum(x.energy_j for x in r.rows))
    assert r.info["parameter_set"] == "test-set" and r.info["duration_model"] == "hef"


def test_hef_family_without_curve_falls_back_to_roofline(tmp_path):
    import json

    path = tmp_path / "p.json"
    path.write_text(json.dumps(params().to_dict()))
    m = nn.Sequential(nn.Linear(64, 64), nn.GELU())
    r = fxenergy.annotate(m, torch.randn(8, 64), hardware=T4, predictor="hef", params=str(path))
    gelu = next(x for x in r.rows if x.op == "gelu")
    assert gelu.duration_s > 0 and gelu.energy_j > 0  # not a silent zero
    assert any("no HEF energy coefficient for elementwise" in n for n in r.info["energy_notes"])


def test_energy_columns_sum_and_render():
    from fxenergy.report import render

    r = fxenergy.annotate(nn.Sequential(nn.Linear(32, 32), nn.ReLU()), torch.randn(4, 32), hardware=T4,
                          predictor="roofline")
    assert r.totals.energy_j == pytest.approx(sum(x.energy_j for x in r.rows))
    text = render(r, "table")
    assert "Energy (J)" in text and "% energy" in text and "t4" in text


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"predictor": "roofline"}, "needs a hardware profile"),
        ({"hardware": "t4", "predictor": "oracle"}, "unknown predictor"),
        ({"hardware": "t4", "predictor": "roofline", "params": "x"}, "takes no parameter set"),
        ({"hardware": "t4", "predictor": "layerwise"}, "no layerwise parameter file"),
        ({"hardware": "t4", "predictor": "hef", "params": "no-such-set"}, "unknown HEF parameter set"),
    ],
)
def test_predictor_option_errors(kwargs, needle):
    with pytest.raises(fxenergy.UserInputError, match=needle):
        fxenergy.annotate(nn.Linear(2, 2), torch.randn(1, 2), **kwargs)
