"""The learned GPU backend: bounds, power range, math modes, power limit, defaults, CLI, shipped JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import fxenergy
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.device import device_spec
from fxenergy.perf.features import bounds_s
from fxenergy.perf.kernels import conv_kernel, family_of_op, gemm_kernel, memory_kernel, winograd_saved_flops
from fxenergy.perf.model import LearnedGPUModel, load_perf_params
from fxenergy.perf.trees import Forest
from fxenergy.predictors.interface import load_artifact
from fxenergy.records import COST, DURATION, TRACE, get_record


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(1024, 4096)
        self.b = torch.nn.Linear(4096, 1024)
        self.norm = torch.nn.LayerNorm(1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.b(torch.nn.functional.gelu(self.a(x))))


X = torch.randn(8, 512, 1024)


def test_shipped_artifact_names_its_data_and_has_every_family():
    art = load_artifact("learned", "learned-gpu")
    assert "gpu-kernels-neusight" in json.dumps(art["fitted_on"]["dataset"])
    p = load_perf_params()
    assert set(p.forests) == {"gemm", "conv", "elementwise", "reduction"}
    assert p.dispatch_floor_s > 0
    assert p.validated["devices"], "per-device validated errors are shipped"


def test_json_forest_walks_like_sklearn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from fxenergy.perf.trees import forest_to_json

    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(400, 3))
    y = np.sin(Xs[:, 0]) + Xs[:, 1] ** 2 - Xs[:, 2]
    m = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(Xs, y)
    f = Forest(json.loads(json.dumps(forest_to_json(m, ("a", "b", "c")))))
    np.testing.assert_allclose(f.predict(Xs), m.predict(Xs), atol=1e-6)


def test_kernel_families_and_shapes():
    assert family_of_op("addmm") == "gemm" and family_of_op("convolution") == "conv"
    assert family_of_op("native_layer_norm") == "reduction" and family_of_op("embedding") == "gather"
    assert family_of_op("cat") == "copy" and family_of_op("gelu") == "elementwise"
    k = gemm_kernel(2, 64, 32, 16, torch.float32)
    assert k.flops == 2 * 2 * 64 * 32 * 16
    c = conv_kernel(8, 16, 32, 3, 3, 10, 10, 12, 12, 1, torch.float32)
    assert c.flops == 2 * 8 * 10 * 10 * 32 * 16 * 9 and c.k == 16 * 9


def test_durations_never_below_bound_and_grow_with_work():
    m = LearnedGPUModel(load_profile("a100-80gb-pcie"))
    ks = [gemm_kernel(1, n, n, n, torch.float32) for n in (64, 256, 1024, 4096)]
    ks += [memory_kernel("elementwise", 1024, n, torch.float32, 8.0 * 1024 * n, 1024 * n) for n in (16, 1024, 65536)]
    t, tb = m.kernel_durations_s(ks)
    assert np.all(t >= tb) and np.all(np.isfinite(t))
    assert t[3] > t[2] > t[1]
    assert t[6] > t[5]


def test_math_modes_follow_pytorch_defaults():
    dev = device_spec(load_profile("a100-80gb-pcie"))
    assert dev.peak_for("gemm", torch.float32, "highest", True) == dev.peak_flops["fp32"]
    assert dev.peak_for("gemm", torch.float32, "high", True) == dev.peak_flops["tf32"]
    assert dev.peak_for("conv", torch.float32, "highest", True) == dev.peak_flops["tf32"]
    assert dev.peak_for("conv", torch.float32, "highest", False) == dev.peak_flops["fp32"]
    assert dev.peak_for("gemm", torch.float16, "highest", True) == dev.peak_flops["fp16"]
    v100 = device_spec(load_profile("v100-pcie-16gb"))  # no TF32 before Ampere
    assert v100.peak_for("conv", torch.float32, "highest", True) == v100.peak_flops["fp32"]
    fast = fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie", matmul_precision="high")
    slow = fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie")
    assert fast.totals.duration_s < slow.totals.duration_s
    assert any("'highest' (no TF32)" in n for n in slow.info["energy_notes"])
    assert any("'high' (TF32)" in n for n in fast.info["energy_notes"])
    with pytest.raises(UserInputError):
        fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie", matmul_precision="fast")


def test_sustained_clock_lowers_peak():
    p = load_profile("l4")
    dev = device_spec(p)
    if p.sustained_clock_hz:
        assert dev.peak_flops["fp32"] == pytest.approx(p.peak_flops["fp32"] * p.sustained_clock_hz / p.clock_hz)


def test_power_limit_lowers_clock_power_and_is_consistent():
    full = fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie")
    capped = fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie", power_limit_w=150)
    assert capped.totals.duration_s > full.totals.duration_s
    mean_full = full.totals.energy_j / full.totals.duration_s
    mean_capped = capped.totals.energy_j / capped.totals.duration_s
    assert mean_capped < mean_full and mean_capped <= 150
    with pytest.raises(UserInputError):
        fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie", power_limit_w=10)
    with pytest.raises(UserInputError):
        fxenergy.annotate(MLP(), X, hardware="a100-80gb-pcie", predictor="roofline", power_limit_w=150)


def test_learned_is_the_gpu_default_and_others_stay_selectable():
    r = fxenergy.annotate(MLP(), X, hardware="h100-sxm")
    assert r.info["predictor"] == "learned" and r.info["duration_model"] == "learned"
    assert any("expected duration error ±" in n and "validated on" in n for n in r.info["energy_notes"])
    roof = fxenergy.annotate(MLP(), X, hardware="h100-sxm", predictor="roofline")
    assert roof.info["predictor"] == "roofline"
    assert r.totals.duration_s >= roof.totals.duration_s * 0.5
    cpu = fxenergy.annotate(MLP(), X, hardware="xeon-gold-5120")
    assert cpu.info["predictor"] != "learned"
    with pytest.raises(UserInputError):
        fxenergy.annotate(MLP(), X, hardware="xeon-gold-5120", predictor="learned")


def check_graph(gm: torch.fx.GraphModule, model: LearnedGPUModel) -> tuple[float, float]:
    """Predict the analysed graph ``gm`` with ``model`` (in a view) and check every node's bounds."""
    from fxenergy.analysis import GraphView
    from fxenergy.passes.lower_bound import LowerBound

    view = GraphView(gm)
    model.annotate(view)
    lower = LowerBound(model.profile)
    dev = model.device
    total_t = total_e = 0.0
    for node in view.graph.nodes:
        d = get_record(node, DURATION)
        if d is None:
            continue
        cost, trace = get_record(node, COST), get_record(node, TRACE)
        bound = model.node_bound_s(cost, trace, winograd_saved_flops(trace.calls))  # Winograd-aware for 3x3 convs
        # a fused attention node (flash / memory-efficient kernel) never moves the S x S scores its cost (the math
        # decomposition's) counts: its roofline is its kernels' bounds, never below the physical LowerBound
        bound = min(bound, model._bounds.get(node.name, bound))
        assert d.duration_s >= max(bound, lower(cost, trace)) * (1 - 1e-9), node.name
        e = model.node_energy_j(cost, trace, d, node.name)
        p = e / d.duration_s
        assert dev.idle_w - 1e-9 <= p <= dev.power_limit_w + 1e-9, (node.name, p)
        total_t += d.duration_s
        total_e += e
    assert math.isfinite(total_t) and total_t > 0 and math.isfinite(total_e) and total_e > 0
    return total_t, total_e


DEVICES = ("a30", "a100-80gb-pcie", "h100-sxm")


def test_training_step_costs_more_and_stays_in_range():
    inf = fxenergy.annotate(MLP(), X, hardware="a30")
    tr = fxenergy.annotate(MLP(), X, hardware="a30", mode="training", optimizer="sgd")
    assert tr.totals.duration_s > 2 * inf.totals.duration_s
    check_graph(tr.graph_module, LearnedGPUModel(load_profile("a30")))


def test_kernel_bounds_match_roofline():
    dev = device_spec(load_profile("t4"))
    k = gemm_kernel(1, 1024, 1024, 1024, torch.float32)
    (tb,) = bounds_s([k], dev)
    assert tb == pytest.approx(max(k.flops / dev.peak_flops["fp32"], k.bytes / dev.bandwidth_bytes_per_s))


def test_cli_gpu_options(tmp_path):
    from fxenergy.cli import main

    out = tmp_path / "r.json"
    assert main(["report", "resnet18", "--hardware", "a100-80gb-pcie", "--matmul-precision", "high", "--conv-tf32", "off",
                 "--power-limit", "200", "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    notes = " ".join(data["info"]["energy_notes"])
    assert "'high' (TF32)" in notes and "conv TF32 off" in notes and "power limit 200 W" in notes
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "resnet18", "--hardware", "a100-80gb-pcie", "--power-limit", "0"])
    assert exit_info.value.code == 2


def test_budget_takes_gpu_options(tmp_path):
    from fxenergy.budget.config import load_config

    (tmp_path / "fxenergy.toml").write_text(
        '[[budget]]\nname = "b"\nmodel = "resnet18"\nhardware = "a30"\nmax_energy_j = 1.0\n'
        'matmul_precision = "high"\nconv_tf32 = false\npower_limit_w = 120\n')
    cfg = load_config(tmp_path / "fxenergy.toml")
    b = cfg.budgets[0]
    assert (b.matmul_precision, b.conv_tf32, b.power_limit_w) == ("high", False, 120)


def test_hardware_show_states_the_validated_error(capsys):
    from fxenergy.cli import main
    from fxenergy.perf.validated import device_error, expected_error

    assert main(["hardware", "show", "t4"]) == 0
    out = capsys.readouterr().out
    err, basis = device_error("t4")  # type: ignore[misc]
    assert f"time error ±{err:.0f}%, validated on this GPU: {basis}" in out and "leave-one-GPU-out" in basis
    assert device_error("l4") is None
    assert main(["hardware", "show", "l4"]) == 0
    err, basis = expected_error("l4")
    assert f"not validated on this GPU; expected time error ±{err:.0f}% ({basis})" in capsys.readouterr().out


def test_tensor_core_power_line_and_training_uplift():
    """TF32 layers read the ``conv_tc``/``gemm_tc`` power line where fitted; backward/optimizer nodes of a
    training step get the shipped uplift, forward nodes none, and power stays within [idle, limit]."""
    from dataclasses import replace

    from fxenergy.perf.model import power_coefficients_for

    pp = load_perf_params()
    power = {"default": {"conv": [0.1, 0.2], "conv_tc": [0.7, 0.1], "elementwise": [0.2, 0.3]}, "devices": {}}
    assert power_coefficients_for(power, "a30", "conv", tensor_cores=True) == (0.7, 0.1)
    assert power_coefficients_for(power, "a30", "conv") == (0.1, 0.2)
    assert power_coefficients_for(power, "a30", "gemm", tensor_cores=True) == (0.2, 0.3)  # no gemm line: fallback
    base = LearnedGPUModel(load_profile("rtx-2080-ti"), replace(pp, training_power={}))
    up = LearnedGPUModel(load_profile("rtx-2080-ti"), replace(pp, training_power={"backward": 0.3, "optimizer": 0.3}))
    dev = base.device
    for fam in ("conv", "gemm", "elementwise", "reduction"):
        assert up.power_w(fam, 0.3, phase="forward") == base.power_w(fam, 0.3, phase="forward")
        lo, hi = base.power_w(fam, 0.3, phase="backward"), up.power_w(fam, 0.3, phase="backward")
        assert hi > lo or hi == dev.power_limit_w
        assert dev.idle_w <= lo <= hi <= dev.power_limit_w
    assert up.power_w("conv", 1.0, phase="optimizer") <= dev.power_limit_w  # clipped at the limit


def test_depthwise_backward_not_priced_as_dense():
    """A depthwise layer's backward (input and weight gradients, each as much arithmetic as its memory-bound forward)
    is not priced against a dense-convolution bound: flop_counter's count of its weight gradient is ``groups`` times
    too high, and the node floor sat on it (EfficientNet-B5's 5x5 depthwise layers at 7.9 ms each on the A30)."""
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 1024, 1), torch.nn.Conv2d(1024, 1024, 5, padding=2, groups=1024))
    r = fxenergy.annotate(m, torch.randn(32, 3, 14, 14), hardware="a30", mode="training", optimizer="sgd")
    fwd = sum(row.duration_s for row in r.rows if row.phase == "forward" and row.module_path == "1")
    bwd = sum(row.duration_s for row in r.rows if row.phase == "backward" and row.module_path == "1")
    assert 0 < fwd and 0 < bwd < 4 * fwd, (fwd, bwd)
