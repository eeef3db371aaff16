"""Capture: meta copies, the fallback ladder, module paths, training graphs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import meta
from torch import nn

import fxenergy
from fxenergy.capture import capture
from fxenergy.records import TRACE


class ShapeBranch(nn.Module):
    """symbolic_trace cannot branch on a Proxy's shape; export can."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        if x.shape[0] > 1:
            return self.fc(x)
        return x


class DataBranch(nn.Module):
    """Branches on tensor values: nothing can trace this without data."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def test_real_weights_untouched_and_graph_is_weightless():
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    before = [p.detach().clone() for p in m.parameters()]
    cap = capture(m, torch.randn(3, 16))
    assert cap.method == "symbolic_trace"
    assert all(p.device.type == "meta" for p in cap.graph_module.parameters())
    assert all(p.device.type == "cpu" for p in m.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert cap.param_count == 16 * 32 + 32 + 32 * 4 + 4


def test_tied_weights_counted_once(gpt2_small):
    cap = capture(gpt2_small, (), {"input_ids": meta(1, 8, dtype=torch.long)})
    assert cap.param_count == sum(p.numel() for p in gpt2_small.parameters())  # lm_head tied to wte


def test_ladder_falls_back_to_record_and_says_why():
    cap = capture(ShapeBranch(), torch.randn(2, 8))
    assert cap.method == "record"
    assert len(cap.attempts) == 1 and cap.attempts[0].startswith("symbolic_trace:")
    assert capture(ShapeBranch(), torch.randn(2, 8), method="export").method == "export"


def test_untraceable_model_lists_every_attempt():
    with pytest.raises(fxenergy.CaptureError) as e:
        capture(DataBranch(), torch.randn(2, 8))
    msg = str(e.value)
    assert "symbolic_trace:" in msg and "record:" in msg and "export:" in msg
    assert "\n" not in msg


def test_wrong_input_shape_is_one_line_error():
    with pytest.raises(fxenergy.CaptureError) as e:
        fxenergy.annotate(nn.Linear(8, 4), torch.randn(2, 5))
    assert "\n" not in str(e.value) and "shape" in str(e.value)


@pytest.mark.parametrize("bad", [{"mode": "eval"}, {"method": "jit"}, {"optimizer": "lbfgs"}])
def test_bad_options(bad):
    with pytest.raises(fxenergy.UserInputError):
        capture(nn.Linear(2, 2), torch.randn(1, 2), **bad)


def test_module_paths_kept_fast_path():
    with torch.device("meta"):
        m = torchvision.models.resnet18()
    r = fxenergy.annotate(m, meta(1, 3, 224, 224))
    compute = [row for row in r.rows if row.macs]
    assert compute and all(row.module_path for row in compute)
    assert {row.module_path for row in compute} >= {"conv1", "layer1.0.conv1", "layer4.1.conv2", "fc"}
    blocks = {g.key for g in r.group("module", depth=1)}
    assert {"layer1", "layer2", "layer3", "layer4"} <= blocks


@pytest.mark.parametrize("method", ["auto", "export"])
def test_module_paths_kept_transformers(gpt2_small, method):
    r = fxenergy.annotate(gpt2_small, (), example_kwargs={"input_ids": meta(1, 32, dtype=torch.long)}, method=method)
    assert r.info["capture_method"] == {"auto": "record", "export": "export"}[method]
    layers = {row.module_path for row in r.rows if row.macs}
    assert "transformer.h.0.attn.c_attn" in layers and "lm_head" in layers
    blocks = [g.key for g in r.group("module", depth=3) if g.totals.macs]
    assert "transformer.h.0" in blocks and "transformer.h.1" in blocks


def test_training_graph_has_phases_and_backward_modules():
    with torch.device("meta"):
        m = torchvision.models.resnet18()
    cap = capture(m, meta(2, 3, 64, 64), mode="training", optimizer="sgd")
    traces = [n.meta["fxenergy"][TRACE] for n in cap.graph_module.graph.nodes if "fxenergy" in n.meta]
    phases = {t.phase for t in traces}
    assert {"forward", "backward", "optimizer", "input"} <= phases
    bwd = [t for t in traces if t.phase == "backward" and any(c.name == "convolution_backward" for c in t.calls)]
    assert len(bwd) == 20  # one per conv layer (17 main-path + 3 downsample)
    assert all(t.module_type == "Conv2d" for t in bwd)
    opt = [t for t in traces if t.phase == "optimizer" and t.calls]
    assert {t.module_type for t in opt} == {"sgd"}


def test_training_mode_leaves_callers_model_mode():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).eval()
    fxenergy.annotate(m, torch.randn(2, 4), mode="training")
    assert m.training is False
