"""The host/GPU schedule of whole graphs (fxenergy.perf.model.gpu_timeline_s, schedule "loop" / "pass")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fxenergy.perf.model as pm
from fxenergy.analysis import GraphView, analyse, predict
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.model import LearnedGPUModel, gpu_timeline_s
from fxenergy.records import DURATION, get_record
from fxenergy.resolve import resolve


def _recursion(h: np.ndarray, k: np.ndarray, iterations: int) -> list[np.ndarray]:
    """The schedule written as its definition: per iteration, per call, its increment of the GPU timeline."""
    ready = end = 0.0
    out = []
    for _ in range(iterations):
        inc = []
        for hi, ki in zip(h, k):
            ready += hi
            new = max(ready, end) + ki
            inc.append(new - end)
            end = new
        out.append(np.array(inc))
    return out


def test_one_call_loop_costs_the_max_of_host_and_kernel():
    for h, k in ((8e-6, 2e-6), (8e-6, 50e-6), (8e-6, 8e-6)):
        assert gpu_timeline_s(np.array([h]), np.array([k]), "loop")[0] == pytest.approx(max(h, k))
        assert gpu_timeline_s(np.array([h]), np.array([k]), "pass")[0] == pytest.approx(h + k)  # an idle GPU waits


def test_a_big_kernel_hides_the_host_cost_of_the_small_calls_after_it():
    h = np.full(5, 10e-6)
    k = np.array([200e-6, 1e-6, 1e-6, 1e-6, 1e-6])
    inc = gpu_timeline_s(h, k, "loop")
    assert inc.sum() < np.maximum(h, k).sum() - 30e-6  # the per-call maximum charges the four floors again
    np.testing.assert_allclose(inc, k)  # the GPU never waits: each call costs its kernels
    assert gpu_timeline_s(h, k, "pass").sum() == pytest.approx(10e-6 + 204e-6)  # only the first issue is exposed


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_matches_the_recursion(seed):
    rng = np.random.default_rng(seed)
    h = rng.uniform(5e-6, 60e-6, 40)
    k = rng.lognormal(np.log(20e-6), 1.5, 40)
    np.testing.assert_allclose(gpu_timeline_s(h, k, "pass"), _recursion(h, k, 1)[0], rtol=1e-9, atol=1e-15)
    loop = gpu_timeline_s(h, k, "loop")
    assert loop.sum() == pytest.approx(max(h.sum(), k.sum()))
    assert np.all(loop >= k * (1 - 1e-12))
    if h.sum() > k.sum():  # host-bound: the steady state is reached in the second iteration and stays
        iters = _recursion(h, k, 4)
        for it in iters[1:]:
            np.testing.assert_allclose(loop, it, rtol=1e-9, atol=1e-15)


def test_host_bound_loop_costs_the_host_and_leaves_gpu_idle_time_in_the_rows():
    h = np.full(4, 10e-6)
    k = np.array([15e-6, 1e-6, 1e-6, 1e-6])
    inc = gpu_timeline_s(h, k, "loop")
    assert inc.sum() == pytest.approx(40e-6)
    assert np.all(inc >= k - 1e-15)
    assert inc[1] == pytest.approx(1e-6)  # queued behind the long kernel: no gap
    assert inc[3] == pytest.approx(10e-6)  # the GPU waits for the host


def test_unknown_schedule_is_refused():
    with pytest.raises(UserInputError):
        LearnedGPUModel(load_profile("a30"), schedule="overlap")
    with pytest.raises(ValueError):
        gpu_timeline_s(np.ones(1), np.ones(1), "max")


def _durations(gm: torch.fx.GraphModule, schedule: str) -> tuple[dict[str, float], LearnedGPUModel]:
    view = GraphView(gm)
    model = LearnedGPUModel(load_profile("a30"), schedule=schedule)
    model.annotate(view)
    return {n.name: d.duration_s for n in view.graph.nodes if (d := get_record(n, DURATION)) is not None}, model


def test_one_op_graph_is_priced_alike_by_max_and_loop():
    a = analyse(torch.nn.ReLU(), (torch.randn(32, 64),))
    d_max, _ = _durations(a.graph_module, "max")
    d_loop, _ = _durations(a.graph_module, "loop")
    assert len(d_max) == 1
    assert sum(d_loop.values()) == pytest.approx(sum(d_max.values()))


def test_training_step_schedule_stays_within_bounds_and_below_the_per_call_maximum():
    from test_learned_gpu import check_graph

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
                                torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(64, 10))
    a = analyse(model, (torch.randn(32, 3, 64, 64),), mode="training", optimizer="sgd")
    d_max, _ = _durations(a.graph_module, "max")
    for schedule in ("loop", "pass"):
        d, m = _durations(a.graph_module, schedule)
        assert d.keys() == d_max.keys()
        assert 0 < sum(d.values()) < sum(d_max.values())  # the small calls' host cost overlaps the big kernels
        check_graph(a.graph_module, m)  # every node at least its roofline bound, power within [idle, limit]


def test_module_schedule_setting_reaches_the_duration_pass(monkeypatch):
    a = analyse(torch.nn.Sequential(torch.nn.Linear(512, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10)),
                         (torch.randn(8, 512),))
    base = sum(predict(a, resolve("a30", "learned")).duration_s.values())
    monkeypatch.setattr(pm, "SCHEDULE", "loop")
    assert sum(predict(a, resolve("a30", "learned")).duration_s.values()) < base


@pytest.mark.parametrize("mode", ["loop", "pass"])
def test_a_tiny_call_after_a_long_pass_keeps_its_kernel_time(mode):
    # increments are differences of running sums: without care a 38 ps kernel after 1 s of work loses its digits
    k = np.tile([1e-3, 3.8e-11], 1000)
    h = np.full(len(k), 7.9e-6 if mode == "pass" else 1e-3)
    inc = gpu_timeline_s(h, k, mode)
    assert np.all(inc >= k)
