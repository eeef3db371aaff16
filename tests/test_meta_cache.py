"""The capture's reuse of meta outputs (fxenergy.capture._Recorder): same graphs, same records.

An op's meta output is remade from an earlier call with the same argument metadata only when the op
cannot alias, mutate or produce a data-dependent shape; these tests compare every node's trace and
every row with the reuse turned off, on models that exercise strides (channels_last), in-place
batch-norm statistics (a model left in train mode) and integer/float scalar promotion.
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
import torchvision

import fxenergy.capture as capture
from fxenergy.analysis import analyse
from fxenergy.records import TRACE, get_record


def _no_reuse(*args, **kwargs):
    raise capture._NoKey


class _Scalars(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = x.to(torch.int64)
        a = i + 1  # stays int64
        b = i + 1.0  # promotes to float32: the key tells 1 from 1.0
        return a.sum() + b.sum() + (x * 2).sum() + (x * 2.0).sum()


def _models():
    r18 = torchvision.models.resnet18().eval()
    cl = torchvision.models.resnet18().eval().to(memory_format=torch.channels_last)
    train_bn = torchvision.models.mobilenet_v3_small().train()  # batch norm writes running stats in place
    x = torch.randn(2, 3, 64, 64)
    return [("resnet18", r18, (x,)), ("resnet18 channels_last", cl, (x.to(memory_format=torch.channels_last),)),
            ("mobilenet_v3_small train-mode BN", train_bn, (x,)), ("int/float scalars", _Scalars(), (torch.randn(4, 5),))]


@pytest.mark.parametrize("name,model,args", _models(), ids=lambda v: v if isinstance(v, str) else "")
def test_reused_meta_outputs_give_the_same_analysis(name, model, args):
    a = analyse(model, args)
    with mock.patch.object(capture, "_meta_call_key", _no_reuse):
        b = analyse(model, args)
    assert a.info["capture_method"] == b.info["capture_method"] == "symbolic_trace"
    traces_a = [(n.name, get_record(n, TRACE)) for n in a.graph_module.graph.nodes]
    traces_b = [(n.name, get_record(n, TRACE)) for n in b.graph_module.graph.nodes]
    assert traces_a == traces_b
    assert a.rows == b.rows


def test_reuse_is_used_and_outputs_keep_strides():
    x = torch.empty(2, 8, 5, 5, device="meta").to(memory_format=torch.channels_last)
    rec = capture._Recorder([])
    with rec:
        first = torch.nn.functional.relu(x)
        second = torch.nn.functional.relu(x)
    assert len(rec._outputs) == 1  # the second call was remade from the first
    assert first.stride() == second.stride() == x.stride() and second is not first
    assert [c.op for c in rec.calls] == [torch.ops.aten.relu.default] * 2
    assert rec.calls[0] == rec.calls[1]


@pytest.mark.parametrize("op,reusable", [
    (torch.ops.aten.relu.default, True),
    (torch.ops.aten.convolution.default, True),
    # its schema does not mark the running-stat writes of training mode; on meta tensors they change
    # no metadata, and the train-mode model above checks the analysis is the same
    (torch.ops.aten.native_batch_norm.default, True),
    (torch.ops.aten._native_batch_norm_legit_no_training.default, True),
    (torch.ops.aten.relu_.default, False),  # in place
    (torch.ops.aten.t.default, False),  # a view
    (torch.ops.aten.nonzero.default, False),  # shape depends on data
    (torch.ops.aten._local_scalar_dense.default, False),  # returns a number
])
def test_which_ops_may_be_reused(op, reusable):
    assert capture._reusable_op(op) is reusable
