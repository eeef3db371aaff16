"""CPU durations of attention-style nodes (issue 12, session cpu6): a node whose ATen calls span several kernel
classes (torchvision's MultiheadAttention and Swin's shifted_window_attention are captured as one node each) is
priced call by call, and layout copies (clone of a permuted view, roll) are their own class."""

from __future__ import annotations

import math

import pytest
import torch

import fxenergy.perf.cpu as cpu
from fxenergy.analysis import analyse
from fxenergy.calibrate.fitting import fit_cpu_perf, measurement_class
from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import CpuDurationModel, CpuPerfParams, kernel_class, split_calls
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.records import COST, TRACE, get_record

PEAK_FLOPS, PEAK_BPS = 150e9, 50e9


def _nodes(model: torch.nn.Module, *shape: int) -> list:
    an = analyse(model, (torch.empty(*shape, device="meta"),))
    out = []
    for node in an.graph_module.graph.nodes:
        trace, cost = get_record(node, TRACE), get_record(node, COST)
        if trace is not None and cost is not None and not cost.free and trace.phase != "input":
            out.append((node, trace, cost))
    return out


def _mha_node() -> tuple:
    mha = torch.nn.MultiheadAttention(96, 4, batch_first=True)

    class Attn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    nodes = [n for n in _nodes(Attn(), 2, 50, 96) if len(n[1].calls) > 3]
    assert len(nodes) == 1, "MultiheadAttention is captured as one node"
    return nodes[0]


def test_attention_node_is_split_into_its_calls_by_class() -> None:
    _, trace, cost = _mha_node()
    parts = split_calls(trace, cost)
    assert parts is not None
    classes = [kernel_class(t, c) for t, c in parts]
    assert {"matmul", "bmm", "softmax"} <= set(classes)
    # the parts carry the node's whole work: FLOPs and bytes add up to the node's cost
    assert sum(c.flops for _, c in parts) == cost.flops
    assert sum(c.bytes_read + c.bytes_written for _, c in parts) == cost.bytes_read + cost.bytes_written


def test_single_class_node_is_not_split() -> None:
    nodes = _nodes(torch.nn.Linear(64, 32), 4, 64)
    (_, trace, cost), = nodes
    assert split_calls(trace, cost) is None


def _params(**laws: PowerLaw) -> CpuPerfParams:
    prof = load_profile("xeon-gold-5120")
    return CpuPerfParams(laws, PEAK_FLOPS, PEAK_BPS, 2, prof.kernel_launch_overhead_s)


def test_split_node_costs_the_sum_of_its_calls_priced_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A softmax priced by a slow softmax curve makes the whole attention node slower; unsplit, the node is
    priced by the matmul curve over its summed FLOPs and the softmax curve does not matter."""
    _, trace, cost = _mha_node()
    prof = load_profile("xeon-gold-5120")
    laws = dict(matmul=PowerLaw(0.5, 3.0, 0.5, "GFLOP"), bmm=PowerLaw(0.3, 3.0, 0.5, "GFLOP"),
                elementwise=PowerLaw(0.3, 3.0, 0.5, "MB"), embedding=PowerLaw(0.3, 3.0, 0.5, "MB"))
    launches = len(split_calls(trace, cost) or ())
    fast = CpuDurationModel(prof, 2, _params(**laws, softmax=PowerLaw(0.3, 3.0, 0.5, "MB")))
    slow = CpuDurationModel(prof, 2, _params(**laws, softmax=PowerLaw(0.003, 3.0, 0.5, "MB")))
    t_fast, model, cls = fast.node_duration(trace, cost, launches)
    t_slow = slow.node_duration(trace, cost, launches)[0]
    assert model.endswith("/split") and cls in ("matmul", "bmm")
    assert t_slow > 1.5 * t_fast
    parts = split_calls(trace, cost)
    assert parts is not None
    assert math.isclose(t_fast, sum(fast._node_duration(t, c, 1)[0] for t, c in parts), rel_tol=1e-9)
    monkeypatch.setattr(cpu, "SPLIT_MIXED_NODES", False)
    assert math.isclose(fast.node_duration(trace, cost, launches)[0], slow.node_duration(trace, cost, launches)[0])


class _Windows(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) -> windows of 7x7, as Swin partitions
        b, h, w, c = x.shape
        x = torch.roll(x, shifts=(-3, -3), dims=(1, 2))
        x = x.view(b, h // 7, 7, w // 7, 7, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 49, c)
        return x + 1.0


def test_layout_copies_are_their_own_class() -> None:
    classes = {c.op: kernel_class(t, c) for _, t, c in _nodes(_Windows(), 1, 14, 14, 8)}
    assert classes["roll"] == "layout"
    assert classes["clone"] == "layout"  # the reshape of a permuted view copies
    assert classes["add"] == "elementwise"


def _m(op: str, family: str, shape: tuple, nbytes: int, t: float) -> Measurement:
    return Measurement(family, op, (shape,), {}, 0, 0, nbytes, t, 5, 10)


def test_layout_measurements_fit_their_own_curve_and_older_files_fall_back_to_embedding() -> None:
    assert measurement_class(_m("contiguous", "embedding", (8, 128, 64), 1, 1.0)) == "layout"
    assert measurement_class(_m("permute NCHW->NHWC", "embedding", (1, 64, 56, 56), 1, 1.0)) == "layout"
    assert measurement_class(_m("roll", "elementwise", (1, 56, 56, 96), 1, 1.0)) == "layout"
    assert measurement_class(_m("cat", "embedding", (1, 64, 56, 56), 1, 1.0)) == "embedding"
    # strided copies at 10 GB/s, gathers at 40 GB/s: two curves, each near its own rate
    ms = [_m(op, "embedding", (n,), n, n / rate) for n in (2**16, 2**18, 2**20, 2**22, 2**24)
          for op, rate in (("contiguous", 10e9), ("permute NCHW->NHWC", 10e9), ("cat", 40e9), ("embedding", 40e9))]
    p = fit_cpu_perf(ms, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert {"layout", "embedding"} <= set(p.laws)
    n = 2**22
    assert p.laws["layout"].duration_s(n, PEAK_BPS) > 2.5 * p.laws["embedding"].duration_s(n, PEAK_BPS)
    # a parameter set without a layout curve prices a clone by its embedding curve (older calibration files)
    _, trace, cost = next(x for x in _nodes(_Windows(), 1, 14, 14, 8) if x[2].op == "clone")
    prof = load_profile("xeon-gold-5120")
    old = CpuDurationModel(prof, 2, _params(embedding=p.laws["embedding"]))
    new = CpuDurationModel(prof, 2, _params(embedding=p.laws["embedding"], layout=p.laws["layout"]))
    assert old.node_duration(trace, cost, 1)[2] == "layout"
    assert new.node_duration(trace, cost, 1)[0] > old.node_duration(trace, cost, 1)[0]


class _Sdpa(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(x, x, x)


def test_fused_sdpa_node_is_priced_whole() -> None:
    """A lone scaled_dot_product_attention runs as one fused kernel on a CPU (the calibration's sdpa benchmark):
    its captured math decomposition (bmm, _safe_softmax, bmm) is not split."""
    nodes = [n for n in _nodes(_Sdpa(), 1, 4, 32, 16) if len(n[1].calls) > 3]
    assert nodes, "the attention call is captured as one node with its decomposition"
    _, trace, cost = nodes[0]
    assert any(c.name == "_safe_softmax" for c in trace.calls)
    assert split_calls(trace, cost) is None
