"""Seed 003 cache model: placement rules, Eq. 3-9 by hand with Table 4, fit recovers constants."""

from __future__ import annotations

import math

import pytest
import torch

import fxenergy
from fxenergy.hardware import load_profile
from fxenergy.predictors.cache import MIB, TABLE4, CachePredictor, Workload, design, levels_of, placements
from fxenergy.predictors.interface import NotFittedError, load_artifact


@pytest.fixture(scope="module")
def cpu():
    return CachePredictor.from_json(load_artifact("cache", "cache-xeon-gold-6154")), load_profile("xeon-gold-6154")


def test_small_mlp_by_hand(cpu):
    p, prof = cpu
    m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    gm = fxenergy.annotate(m, torch.randn(8, 16)).graph_module
    w = p.workload(gm)
    # f = params: (16*32 + 32 + 32*4 + 4) * 4 B = 676 * 4 = 2704 B
    assert w.param_bytes == 2704
    # t_l: Linear1 in 8*16*4 = 512 + out 8*32*4 = 1024 -> 1536; Linear2 in 1024 + out 8*4*4 = 128 -> 1152
    assert w.inter_layer_bytes == (1536, 1152)
    # o_f = 2*(8*16*32 + 8*32*4) + 8*32 (relu) = 2*5120 + 256 = 10496 FLOP
    assert w.flops_forward == 10496
    # everything fits a 32 KiB L1 (f: 2704 + 1536/36 <= 32768; d = 512 + 128 = 640 B): a_L1 = m_L1 = 0
    assert placements(w, levels_of(prof)) == {"t": [0, 0], "f": 0, "d": 0}
    # E_f = k_p + k_o*o_f + k_d*|L| + phi(d) + phi(f) + sum phi(t_l)
    #     = 1460 + 744 * 1.0496e-5 + 0*2 + 0 + 0 + 0 = 1460.00780902 J; run: k_e + 1 * E_f = 11660.00780902 J
    e = p.predict(gm, prof)
    assert e.overhead_j == 10200
    assert sum(e.node_energy_j.values()) == pytest.approx(1460 + 744 * 10496e-9, rel=1e-12)
    assert p.total_j(w, prof) == pytest.approx(11660.00780902, rel=1e-10)


def test_spill_to_l3_and_ram(cpu):
    p, prof = cpu
    lv = levels_of(prof)
    # f = 2 MiB params: > 1 MiB L2 per core, <= 24.75 MiB L3 -> phi = a_L3 + m_L3 * 2 = 215 + 22.5*2 = 260
    w = Workload(param_bytes=2 * MIB, grad_bytes=2 * MIB, activation_bytes=0, inter_layer_bytes=(),
                 batch_bytes=0, flops_forward=0.0, flops_backward=0.0, runs=0)
    assert placements(w, lv)["f"] == 2
    # d sits with f (P + d/36 <= size): L3 too, 0 B -> phi(d) = a_L3 = 215; E = k_p + 260 + 215 = 1935
    assert p.total_j(w, prof) == pytest.approx(1460 + 260 + 215)
    q = design(w, lv)
    assert q["a_L3"] == 2 and q["m_L3"] == 2  # phi(f) and phi(d) both in L3; m counts 2 MiB once (d is 0 B)


def test_training_uses_eq8(cpu):
    p, prof = cpu
    w = Workload(param_bytes=1000, grad_bytes=1000, activation_bytes=500, inter_layer_bytes=(800,),
                 batch_bytes=100, flops_forward=1e9, flops_backward=2e9, mode="training", epochs=2,
                 train_batches=3, test_batches=1, runs=1)
    # n(2h_t + h_s) = 2*(6+1) = 14 passes; k_o: n(h_t+h_s)*o_f + n h_t o_b = 8*1 + 6*2 = 20 GFLOP; all in L1
    assert p.total_j(w, prof) == pytest.approx(10200 + 14 * 1460 + 20 * 744)


def test_gpu_constants_load():
    p = CachePredictor.from_json(load_artifact("cache", "cache-v100-pcie-16gb"))
    assert p.constants_ == TABLE4["v100-pcie-16gb"]
    w = Workload(param_bytes=100 * MIB, grad_bytes=0, activation_bytes=0, inter_layer_bytes=(1024,),
                 batch_bytes=0, flops_forward=0.0, flops_backward=0.0, runs=0)
    # f in VRAM: a=0 + 5.7*100 = 570; d(0 B) also VRAM: 0; t_l in L1: 16.4 + k_d 33; k_p 3080
    assert p.total_j(w, load_profile("v100-pcie-16gb")) == pytest.approx(3080 + 33 + 570 + 16.4)


def test_fit_recovers_log_error_and_unfitted_raises():
    rows, gm, prof = CachePredictor.conformance_example()
    with pytest.raises(NotFittedError):
        CachePredictor().predict(gm, prof)
    p = CachePredictor(hardware="xeon-gold-6154").fit(rows)
    assert p.fit_report_["rms_log_error"] < 0.01
    assert all(v >= 0 and math.isfinite(v) for v in p.constants_.values())
