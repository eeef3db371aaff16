"""The physical lower bound of a Winograd-eligible convolution (3x3, stride 1, dilation 1, one group) counts
1 / WINOGRAD_MULTIPLY_FACTOR of its direct multiplies; every other conv keeps the direct count. FLOPs do not change."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from fxenergy.analysis import analyse
from fxenergy.hardware import load_profile
from fxenergy.passes.lower_bound import LowerBound
from fxenergy.perf.kernels import WINOGRAD_MULTIPLY_FACTOR, conv_kernel, winograd_eligible, winograd_saved_flops
from fxenergy.perf.model import LearnedGPUModel
from fxenergy.records import COST, TRACE, get_record

F = WINOGRAD_MULTIPLY_FACTOR
CONVS = {  # name -> (layer, eligible)
    "c3x3": (nn.Conv2d(16, 16, 3, padding=1), True),
    "c3x3_s2": (nn.Conv2d(16, 16, 3, stride=2, padding=1), False),
    "c1x1": (nn.Conv2d(16, 16, 1), False),
    "c5x5": (nn.Conv2d(16, 16, 5, padding=2), False),
    "c3x3_g4": (nn.Conv2d(16, 16, 3, padding=1, groups=4), False),
    "c3x3_d2": (nn.Conv2d(16, 16, 3, padding=2, dilation=2), False),
}


class _Convs(nn.Module):
    def __init__(self):
        super().__init__()
        for name, (layer, _) in CONVS.items():
            self.add_module(name, layer)

    def forward(self, x):
        return sum(getattr(self, n)(x).sum() for n in CONVS)


def test_eligibility():
    assert winograd_eligible((3, 3)) and winograd_eligible((3, 3), (1, 1), (1, 1), 1)
    assert not winograd_eligible((3, 3), 2)
    assert not winograd_eligible((1, 1)) and not winograd_eligible((5, 5)) and not winograd_eligible((3,))
    assert not winograd_eligible((3, 3), groups=4) and not winograd_eligible((3, 3), dilation=2)
    assert not winograd_eligible((3, 3), transposed=True)


@pytest.fixture(scope="module")
def conv_nodes():
    gm = analyse(_Convs(), torch.randn(2, 16, 32, 32)).graph_module
    out = {}
    for node in gm.graph.nodes:
        cost, trace = get_record(node, COST), get_record(node, TRACE)
        if cost is not None and "conv" in cost.op and not cost.free:
            out[str(node.target).split(".")[-1] if node.op == "call_module" else node.name] = (cost, trace)
    return out


def test_bound_is_winograd_only_for_eligible_convs(conv_nodes):
    assert set(CONVS) <= set(conv_nodes), conv_nodes.keys()
    bound = LowerBound(load_profile("a30"))
    for name, (_, eligible) in CONVS.items():
        cost, trace = conv_nodes[name]
        assert cost.flops > 0
        saved = winograd_saved_flops(trace.calls)
        if eligible:  # the compute term at the fewest multiplies; the cost's FLOPs themselves unchanged
            assert saved == pytest.approx(cost.flops * (1 - 1 / F))
            assert bound(cost, trace) == pytest.approx(bound(replace(cost, flops=cost.flops / F)))
            assert bound(cost, trace) < bound(cost)
        else:
            assert saved == 0.0
            assert bound(cost, trace) == bound(cost)


def test_training_step_backward_data_is_eligible_weight_grad_is_not():
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.Conv2d(8, 8, 3, padding=1, bias=False))
    gm = analyse(net, torch.randn(2, 8, 16, 16), mode="training").graph_module
    fwd_flops = 2.0 * 2 * 8 * 16 * 16 * 8 * 9  # each of dgrad and wgrad has the forward's FLOPs
    seen = set()
    for n in gm.graph.nodes:
        trace = get_record(n, TRACE)
        for c in trace.calls if trace is not None else ():
            if "convolution_backward" in str(c.op):
                dgrad, wgrad = bool(c.args[10][0]), bool(c.args[10][1])
                seen.add((dgrad, wgrad))
                assert winograd_saved_flops([c]) == pytest.approx(fwd_flops * (1 - 1 / F) if dgrad else 0.0)
    assert (True, True) in seen and (False, True) in seen  # the second layer has a dgrad, the first not


def test_learned_kernel_floor():
    """A Winograd-eligible conv kernel is never priced below its roofline over F; an ineligible one never below its
    roofline; the direct-count roofline itself is unchanged."""
    m = LearnedGPUModel(load_profile("v100-sxm2-32gb"))
    shapes = [(b, c, s) for b in (1, 8, 64) for c in (16, 64, 256) for s in (7, 28, 112)]
    ks_w = [conv_kernel(b, c, c, 3, 3, s, s, s, s, 1, torch.float32, winograd=True) for b, c, s in shapes]
    ks_d = [conv_kernel(b, c, c, 3, 3, s, s, s, s, 1, torch.float32) for b, c, s in shapes]
    tw, bw = m.kernel_durations_s(ks_w)
    td, bd = m.kernel_durations_s(ks_d)
    assert (bw == bd).all()  # the roofline (and the power model's utilisation) stays the direct count
    assert (tw >= bw / F * (1 - 1e-9)).all() and (td >= bd * (1 - 1e-9)).all()
    assert (tw <= td * (1 + 1e-9)).all()
    assert (tw < bw).any()  # the floor is used: the V100's forest puts big 3x3 convs under their direct roofline
