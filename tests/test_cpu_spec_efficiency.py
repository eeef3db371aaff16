"""The spec-sheet CPU efficiencies (``fxenergy.perf.cpu.SPEC_EFFICIENCY``) are what scripts/fit_cpu_spec.py derives from
its stored rows, stay physical, and leave the calibrated path alone (issue 12, point 3; session cpu19)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from fxenergy.hardware import load_profile
from fxenergy.perf import cpu
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.records import NodeCost, NodeTrace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fit():
    spec = importlib.util.spec_from_file_location("fit_cpu_spec", ROOT / "scripts" / "fit_cpu_spec.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def doc(fit):
    return fit.read_rows()


def test_shipped_figures_are_what_the_script_derives(fit, doc):
    eff, src = fit.derive(doc)
    assert eff == dict(cpu.SPEC_EFFICIENCY), "re-derive: uv run python scripts/fit_cpu_spec.py, then update SPEC_EFFICIENCY"
    assert set(eff) == set(cpu.KERNEL_CLASSES)
    # every class's figure says where it came from; the anchor keeps its stated level
    assert src[fit.ANCHOR] == "anchor" and eff[fit.ANCHOR] == cpu.SPEC_EFFICIENCY_STATED[fit.ANCHOR]
    assert {c for c, s in src.items() if s == "stated"} == {c for c in eff if eff[c] == cpu.SPEC_EFFICIENCY_STATED[c]} - {fit.ANCHOR}
    # the laws follow the figures
    assert all(cpu.SPEC_LAWS[c].eta_max == eff[c] for c in cpu.SPEC_LAWS)


def test_rows_file_holds_both_cpus(doc):
    n = {w: sum(r["cpu"] == w for r in doc["rows"]) for w in "AB"}
    assert n["A"] > 1000 and n["B"] > 5000, n
    assert len(doc["sources"]["A"]) >= 3  # several calibration sessions of CPU A
    assert all(r["s"] > 0 and (r["flops"] or r["ew"] or r["bytes"]) for r in doc["rows"])


def test_a_class_fit_recovers_a_known_efficiency(fit, doc):
    spec = fit.spec_of(doc["specs"]["B"])
    rows = [{"flops": f, "ew": 0, "bytes": 1e6, "s": 0.0} for f in (1e8, 1e9, 1e10, 1e11)]
    for eff in (0.3, 0.9):
        for r, t in zip(rows, fit.spec_s(spec, "conv_dense", eff, rows)):
            r["s"] = float(t)
        assert fit.fit_class(spec, "conv_dense", rows) == pytest.approx(eff, rel=1e-3)
    mem = [{"flops": 0, "ew": 0, "bytes": b, "s": 0.0} for b in (1e5, 1e7, 1e9)]
    for r, t in zip(mem, fit.spec_s(spec, "pooling", 0.05, mem)):
        r["s"] = float(t)
    assert fit.fit_class(spec, "pooling", mem) == pytest.approx(0.05, rel=1e-3)


def test_transfer_rule(fit):
    assert fit.transfers(0.2, 0.3, 0.5)  # both CPUs far below the stated figure, near each other
    assert not fit.transfers(0.04, 0.6, 0.5)  # tanh: the CPUs disagree more than either does with the statement
    assert not fit.transfers(0.45, 0.55, 0.5)  # nearer the stated figure than to each other


def test_figures_stay_physical():
    for c, v in cpu.SPEC_EFFICIENCY.items():
        assert 0 < v <= 1, (c, v)  # a spec-sheet duration never beats the spec peak or bandwidth
    # a depthwise or grouped convolution is not priced faster per FLOP than a dense one
    assert cpu.SPEC_EFFICIENCY["conv_depthwise"] <= cpu.SPEC_EFFICIENCY["conv_grouped"] <= cpu.SPEC_EFFICIENCY["conv_dense"]


def _spec_t(cls: str, cost: NodeCost) -> float:
    spec = cpu.cpu_spec(load_profile("xeon-gold-5120"), 2)
    return CpuDurationModel._spec_time(spec, cls, cost)[0]


def test_depthwise_per_flop_not_faster_than_dense():
    flops = 2 * 10**9
    cost = NodeCost(flops // 2, flops, 0, 4 * 10**6, 4 * 10**6, 10**5, "convolution")
    assert _spec_t("conv_depthwise", cost) >= _spec_t("conv_dense", cost)


def test_memory_classes_run_at_their_fraction_of_the_level():
    cost = NodeCost(0, 0, 0, 2 * 10**8, 2 * 10**8, 0, "max_pool2d")
    spec = cpu.cpu_spec(load_profile("xeon-gold-5120"), 2)
    _, raw_bw = spec.level_of(4 * 10**8)
    raw_bw /= cpu.MEMORY_EFFICIENCY
    assert _spec_t("pooling", cost) == pytest.approx(4e8 / (raw_bw * cpu.SPEC_EFFICIENCY["pooling"]))
    assert cpu.spec_memory_factor("conv_dense") == 1.0


def test_calibrated_path_ignores_the_spec_figures(monkeypatch):
    """At the calibration's threads, a calibrated class prices nodes by its own law: SPEC_EFFICIENCY changes nothing."""
    law = PowerLaw(0.6, 3.0, 0.5, "GFLOP")
    mem = PowerLaw(0.4, 1.0, 0.5, "GB")
    params = CpuPerfParams({c: (law if cpu.class_basis(c) == "flops" else mem) for c in cpu.KERNEL_CLASSES},
                           150e9, 50e9, 2, 2e-6)
    m = CpuDurationModel(load_profile("xeon-gold-5120"), 2, params)
    trace = NodeTrace("", "", "forward", (), ())
    costs = [("matmul", NodeCost(5 * 10**8, 10**9, 0, 10**7, 10**6, 10**7, "addmm")),
             ("pooling", NodeCost(0, 0, 10**6, 10**7, 10**6, 0, "max_pool2d_with_indices")),
             ("elementwise", NodeCost(0, 0, 10**6, 4 * 10**6, 4 * 10**6, 0, "add"))]
    spec_m = CpuDurationModel(load_profile("xeon-gold-5120"), 2)
    before = [m._node_duration(trace, c, 1)[0] for _, c in costs]
    spec_before = [spec_m._node_duration(trace, c, 1)[0] for _, c in costs]
    monkeypatch.setattr(cpu, "SPEC_EFFICIENCY", {c: 0.01 for c in cpu.KERNEL_CLASSES})
    monkeypatch.setattr(cpu, "SPEC_LAWS", {c: PowerLaw(0.01, 3.0, 0.5, "GFLOP") for c in cpu.SPEC_LAWS})
    after = [m._node_duration(trace, c, 1)[0] for _, c in costs]
    assert before == after
    assert all(math.isfinite(t) and t > 0 for t in before)
    # ... while the uncalibrated (spec) path does follow them
    spec_after = [spec_m._node_duration(trace, c, 1)[0] for _, c in costs]
    assert all(a > 3 * b for a, b in zip(spec_after, spec_before)), (spec_before, spec_after)
