"""Kernels of a convolution's backward on GPUs: the input gradient of a strided convolution."""

from __future__ import annotations

import pytest
import torch

from fxenergy.perf.kernels import kernels_of_call
from fxenergy.records import OpCall, TensorSpec


def _conv_backward(stride: int, groups: int = 1) -> tuple[OpCall, float]:
    """``convolution_backward`` of a 3x3 conv, 64 -> 128 channels, 56x56 input, batch 32; and its forward FLOPs."""
    h_out = (56 + 2 - 3) // stride + 1
    x = TensorSpec((32, 64, 56, 56), torch.float32)
    w = TensorSpec((128, 64 // groups, 3, 3), torch.float32)
    dy = TensorSpec((32, 128, h_out, h_out), torch.float32)
    call = OpCall(torch.ops.aten.convolution_backward.default,
                  (dy, x, w, None, [stride, stride], [1, 1], [1, 1], False, [0, 0], groups, [True, True, False]), {},
                  (x, w, None))
    return call, 2.0 * 32 * h_out * h_out * 128 * (64 // groups) * 9


@pytest.mark.parametrize("stride,groups", [(1, 1), (2, 1), (2, 4), (3, 1)])
def test_dgrad_does_the_forward_multiplies(stride, groups):
    """Each forward multiply has one partner in the input gradient, whatever the stride: a stride-2 dgrad priced over
    every input position with the whole window did 4x the work (resnet downsampling layers, mobile stems)."""
    call, fwd_flops = _conv_backward(stride, groups)
    dgrad, wgrad = kernels_of_call(call, 0.0, 0.0, 0.0)
    assert dgrad.m == 32 * 56 * 56 and wgrad.flops == pytest.approx(fwd_flops)
    assert dgrad.flops == pytest.approx(fwd_flops, rel=0.08 if stride == 1 else 1e-9)  # stride 1: border positions
    assert dgrad.batch * dgrad.m * dgrad.n * dgrad.k * 2 == pytest.approx(dgrad.flops, rel=0.15)
