"""Replay in the ``record`` capture: a module call whose key equals an earlier one is copied, not run.

It must change nothing. With replay on and off, the graphs must be the same node for node (operation,
target, module path and type, phase, ATen calls with their shapes, outputs, and the argument wiring),
and FLOPs, bytes and parameter bytes per (module, phase) and the working sets must agree. Models with
repeated layers (GPT-2, Llama, BERT, T5, a torchvision net) must actually replay; calls that are not
provably the same (stateful modules, in-place writes to inputs, training) must not.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torchvision
from conftest import meta, tiny_llama
from torch import nn

from fxenergy.analysis import analyse
from fxenergy.capture import capture
from fxenergy.records import META_KEY, TRACE
from fxenergy.testing import graph_signature, tiny_bert, tiny_gpt2, tiny_t5

COLUMNS = ("flops", "elementwise_flops", "bytes_read", "bytes_written", "param_bytes_read")


def _sums(a):
    out: Counter = Counter()
    for row in a.rows:
        for c in COLUMNS:
            out[((row.module_path, row.phase), c)] += getattr(row, c)
    return out


def _case(name):
    ids = meta(2, 16, dtype=torch.long)
    mask = meta(2, 16, dtype=torch.long)
    return {
        "gpt2": (tiny_gpt2(), (), {"input_ids": ids}),
        "llama": (tiny_llama(), (), {"input_ids": ids}),
        "bert": (tiny_bert(3), (), {"input_ids": ids, "attention_mask": mask}),
        "t5": (tiny_t5(3), (), {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": meta(2, 8, dtype=torch.long)}),
        "resnet18": (torchvision.models.resnet18().eval(), (torch.randn(1, 3, 64, 64),), {}),
    }[name]


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert", "t5", "resnet18"])
def test_replay_changes_nothing(name):
    model, args, kwargs = _case(name)
    on, off = (analyse(model, args, example_kwargs=kwargs, method="record", replay=r) for r in (True, False))
    assert on.info["capture_method"] == off.info["capture_method"] == "record"
    assert on.info["capture_replayed_calls"] > 0 and off.info["capture_replayed_calls"] == 0
    assert graph_signature(on.graph_module) == graph_signature(off.graph_module)
    assert _sums(on) == _sums(off) and sum(r.flops for r in on.rows) > 0
    assert on.working_sets == off.working_sets
    assert on.info["param_bytes"] == off.info["param_bytes"]


def test_repeated_layers_are_replayed_whole():
    """All but the first of GPT-2's blocks are copies of the first; their rows keep their own paths."""
    model, args, kwargs = _case("gpt2")
    cap = capture(model, args, kwargs, method="record")
    paths = {n.meta[META_KEY][TRACE].module_path for n in cap.graph_module.graph.nodes if n.op == "call_function"}
    assert {"transformer.h.1.attn.c_attn", "transformer.h.2.mlp.c_proj"} <= paths
    assert cap.graph_module.meta["fxenergy_replayed_calls"] >= 2


class _Counter(nn.Module):
    """Stateful: counts calls in a list shared by its instances, and the second call differs."""

    log: list = []

    def __init__(self):
        super().__init__()
        self.log = _Counter.log  # an attribute of each instance, the same list
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        self.log.append(1)
        return self.lin(x) if len(self.log) % 2 else self.lin(x).relu()


class _InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        x.add_(1)  # writes its input: later readers of x are wired to this node
        return self.lin(x)


class _Shared(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.a, self.b = block(), block()

    def forward(self, x):
        y = self.a(x)
        return self.b(x) + x.sum() + y


def test_stateful_and_in_place_calls_are_not_replayed():
    for block in (_Counter, _InPlace):
        m = _Shared(block).eval()
        on, off = (analyse(m, torch.randn(2, 4), method="record", replay=r) for r in (True, False))
        assert graph_signature(on.graph_module) == graph_signature(off.graph_module)
        refused = on.graph_module.meta["fxenergy_replay_refused"]
        assert f"{block.__name__} (a)" in refused, refused  # the inner Linear may still be replayed
    # the counter's second call differs: replaying it would have lost the relu
    counted = analyse(_Shared(_Counter).eval(), torch.randn(2, 4), method="record")
    assert any(r.module_path == "b" and r.elementwise_flops for r in counted.rows if "relu" in r.op)


def test_training_is_not_replayed(gpt2_small):
    on = capture(gpt2_small, (), {"input_ids": meta(1, 8, dtype=torch.long)}, mode="training", method="record")
    assert on.graph_module.meta["fxenergy_replayed_calls"] == 0
