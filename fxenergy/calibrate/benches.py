"""Microbenchmarks of a calibration: op calls shaped like the layers of real models, by op family.

Every family whose cost is not proportional to FLOPs has its own benchmarks (grouped, depthwise and
1x1 convolutions, small spatial sizes, attention-shaped batched matmuls, normalisations, broadcast
element-wise ops, embedding gathers, layout copies), over a sweep of batch sizes. ``quick`` keeps
fewer shapes and leaves some families out: :func:`skipped_in_quick` names them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F

__all__ = ["Bench", "benchmarks", "skipped_in_quick", "QUICK_SKIPS"]

# --------------------------------------------------------------------------------------------------
# microbenchmarks


@dataclass(frozen=True, slots=True)
class Bench:
    """One microbenchmark: ``fn(*inputs, **kwargs)``.

    ``inputs`` are shapes of float32 tensors (uniform in [0.5, 1.5)), or ``(shape, high)`` pairs for int64
    index tensors with values in ``[0, high)``. ``family`` is the op family the call must land in
    once captured (checked by :func:`measure`).
    """

    family: str
    op: str
    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    hot: bool = False  # timed on one set of inputs (cache-resident between calls), whatever the cold sweep asks
    producer: str | None = None  # family of an op ``fn`` runs first, to time the measured op after it; its work is not counted

    def tensors(self, device: torch.device | str, gen: torch.Generator | None = None) -> list[torch.Tensor]:
        out = []
        for spec in self.inputs:
            if _is_index(spec):
                shape, high = spec
                out.append(torch.randint(0, high, shape, generator=gen).to(device))
            else:
                out.append((torch.rand(spec, generator=gen) + 0.5).to(device))  # in [0.5, 1.5): valid variances
        return out

    def input_bytes(self) -> int:
        """Bytes of all inputs (int64 indices, float32 tensors)."""
        return sum(math.prod(s[0]) * 8 if _is_index(s) else math.prod(s) * 4 for s in self.inputs)

    def shapes(self) -> list[list[int]]:
        return [list(s[0] if _is_index(s) else s) for s in self.inputs]


def _is_index(spec: Any) -> bool:
    return len(spec) == 2 and isinstance(spec[0], tuple)


class _Call(torch.nn.Module):
    """``fn(*xs, **kwargs)`` as a module, for capture."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]):
        super().__init__()
        self.fn, self.kw = fn, dict(kwargs)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs, **self.kw)


def _contiguous_t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).contiguous()


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat((a, b), dim=1)  # channels, as DenseNet and SqueezeNet do


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def _last_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=-1)


def _batch_norm(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, mean, var, w, b, training=False)


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), w, b)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def _pick(items: Sequence[Any], quick: bool, every: int = 2) -> list[Any]:
    """All items, or every ``every``-th (always keeping the last) in quick mode."""
    if not quick:
        return list(items)
    picked = list(items[::every])
    if items and picked[-1] is not items[-1]:
        picked.append(items[-1])
    return picked


_CONVS = {  # (in ch, out ch, side, kernel, stride, groups)
    "dense": ((3, 64, 224, 7, 2, 1), (64, 64, 56, 3, 1, 1), (128, 128, 28, 3, 1, 1), (256, 256, 14, 3, 1, 1),
              (512, 512, 7, 3, 1, 1), (64, 128, 56, 3, 2, 1), (3, 32, 224, 3, 2, 1), (128, 32, 28, 3, 1, 1),
              (3, 768, 224, 16, 16, 1), (96, 256, 27, 5, 1, 1)),
    "pointwise": ((64, 256, 56, 1, 1, 1), (256, 64, 56, 1, 1, 1), (512, 128, 28, 1, 1, 1), (1024, 256, 14, 1, 1, 1),
                  (2048, 512, 7, 1, 1, 1), (16, 96, 112, 1, 1, 1), (96, 24, 56, 1, 1, 1), (576, 160, 7, 1, 1, 1),
                  (240, 40, 28, 1, 1, 1), (384, 1536, 14, 1, 1, 1)),
    "depthwise": ((32, 32, 112, 3, 1, 32), (144, 144, 56, 3, 1, 144), (192, 192, 28, 3, 1, 192),
                  (384, 384, 14, 3, 1, 384), (960, 960, 7, 3, 1, 960), (144, 144, 56, 5, 2, 144),
                  (240, 240, 28, 5, 1, 240), (672, 672, 14, 5, 1, 672), (96, 96, 56, 7, 1, 96), (384, 384, 14, 7, 1, 384)),
    # group widths 8..64 (RegNet 8..>100, ResNeXt 4..64): the width decides whether the activation bytes or the
    # FMA work dominate (fxenergy.perf.cpu.GROUPED_OVERLAP_P); quick mode keeps every other, widths 8/16/24/32/48
    "grouped": ((48, 48, 56, 3, 1, 6), (104, 104, 28, 3, 1, 13), (128, 128, 28, 3, 1, 8), (208, 208, 14, 3, 1, 26),
                (240, 240, 14, 3, 1, 10), (256, 256, 56, 3, 2, 32), (512, 512, 14, 3, 1, 16),
                (1024, 1024, 7, 3, 1, 16), (432, 432, 28, 3, 2, 9), (440, 440, 7, 3, 1, 55)),
    "squeeze-excite": ((672, 168, 1, 1, 1, 1), (168, 672, 1, 1, 1, 1), (96, 8, 1, 1, 1, 1), (1152, 48, 1, 1, 1, 1)),
    "small-spatial": ((512, 512, 4, 3, 1, 1), (160, 960, 7, 1, 1, 1), (960, 160, 7, 1, 1, 1), (1024, 1024, 2, 3, 1, 1),
                      (320, 1280, 7, 1, 1, 1), (1152, 1152, 7, 5, 1, 1152), (768, 768, 7, 7, 1, 768)),
}
"""Convolution shapes of the calibration, as in ResNet/VGG (dense 3x3, 7x7 stems, ViT's patchify), bottlenecks
(1x1), MobileNet/EfficientNet/ConvNeXt (depthwise 3x3..7x7), RegNet/ResNeXt (grouped, widths 8..64), squeeze-excitation (1x1 on 1x1)
and the small spatial sizes of the last stages (2x2..7x7)."""
_K3S2 = {"kernel_size": 3, "stride": 2, "padding": 1}
_K3S2_CEIL = {"kernel_size": 3, "stride": 2, "ceil_mode": True}
_K2S2 = {"kernel_size": 2, "stride": 2}
_POOLS = (
    ("max_pool2d", 64, 112, _K3S2), ("max_pool2d", 96, 109, _K3S2_CEIL), ("max_pool2d", 256, 54, _K3S2_CEIL),
    ("max_pool2d", 512, 27, _K3S2_CEIL), ("max_pool2d", 64, 224, _K2S2), ("max_pool2d", 128, 112, _K2S2),
    ("max_pool2d", 256, 56, _K2S2), ("max_pool2d", 512, 28, _K2S2), ("max_pool2d", 512, 14, _K2S2),
    ("avg_pool2d", 128, 56, _K2S2), ("avg_pool2d", 256, 28, _K2S2), ("avg_pool2d", 512, 14, _K2S2),
    ("adaptive_avg_pool2d", 512, 7, {"output_size": 7}), ("adaptive_avg_pool2d", 512, 14, {"output_size": 7}),
)


QUICK_SKIPS = (
    "hardtanh (a clamp: relu stands for it)",
    "group_norm (batch_norm and layer_norm are measured)",
    "convolutions and attention at batch 2, 8 and 32 (1, 4, 16 and 64 are measured)",
    "every other shape of each family (thinned shape lists)",
)
"""What ``--quick`` leaves out, in words (the full calibration measures all of it)."""

TRANSFORMER_LINEARS = tuple((m, kin, kout) for m in (50, 197, 784) for kin, kout in ((768, 3072), (3072, 768), (768, 768))) \
    + ((3136, 96, 384), (3136, 384, 96))
"""(tokens, in, out) of the linears measured at real models' token counts, in quick and full calibrations alike."""
CONV_BATCHES = (1, 2, 4, 8, 16, 32, 64)
QUICK_CONV_BATCHES = (1, 4, 16, 64)
_MAX_BENCH_FLOPS = {"cpu": 6e9, "cuda": 2e11}  # one call of a microbenchmark stays under ~0.1 s


def skipped_in_quick(quick: bool) -> tuple[str, ...]:
    """The families and sizes a quick calibration skips (empty for a full one)."""
    return QUICK_SKIPS if quick else ()


def _conv_flops(b: int, cin: int, cout: int, side: int, k: int, stride: int, groups: int) -> float:
    pad = k // 2 if stride < k else 0
    out = (side + 2 * pad - k) // stride + 1
    return 2.0 * b * cout * (cin // groups) * k * k * out * out


def _group_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.group_norm(x, 32, w, b)


def _roll(x: torch.Tensor) -> torch.Tensor:
    return torch.roll(x, shifts=(-3, -3), dims=(1, 2))  # Swin's shifted windows on (B, H, W, C)


def _nhwc_copy(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()  # NCHW -> NHWC, as ConvNeXt/Swin blocks do


def _relu_(x: torch.Tensor) -> torch.Tensor:
    return x.relu_()


def _add_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x.add_(y)  # grows by < 1.5 per call: thousands of calls stay far from float32's range


def _hardsigmoid_(x: torch.Tensor) -> torch.Tensor:
    return F.hardsigmoid(x, inplace=True)  # converges to 0.6 (hardswish_ would decay to denormals)


def _batch_norm_relu_(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _batch_norm(x, mean, var, w, b).relu_()  # the in-place op on the tensor its producer just wrote


def _bias_add(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x + bias[:, None, None]


def benchmarks(device: str = "cpu", *, quick: bool = False) -> list[Bench]:
    """The microbenchmarks of a calibration, shaped like real layers (CNN convs of every kind at batch
    1..64, transformer linears, attention, normalisations, broadcasts, gathers, layout copies); sizes
    span ~1e3..1e10 FLOP and ~1e3..1e8 bytes. CUDA runs larger sizes on top. ``quick`` skips what
    :data:`QUICK_SKIPS` says.

    >>> {b.family for b in benchmarks(quick=True)} >= {"matmul", "convolution", "embedding"}
    True
    """
    big = device == "cuda"
    cap = _MAX_BENCH_FLOPS["cuda" if big else "cpu"]
    batches = (1, 4, 32) if big else ((1, 4, 16) if quick else (1, 2, 4, 8, 16))
    conv_batches = QUICK_CONV_BATCHES if quick else CONV_BATCHES
    out: list[Bench] = []

    # matmul: linear layers (tokens x in -> out) and plain mm
    tokens = (1, 8, 32, 128, 512, 2048) if not big else (1, 32, 512, 4096, 16384)
    linears = ((256, 256), (768, 768), (768, 3072), (3072, 768), (1024, 4096), (512, 1000), (2048, 1000),
               (768, 2304), (768, 50257), (1280, 1000), (25088, 4096))  # LM head over GPT-2's vocabulary; VGG fc6
    for m in tokens:
        for kin, kout in _pick(linears, quick, 3):
            if 2 * m * kin * kout > cap:
                continue
            out.append(Bench("matmul", "linear", F.linear, ((m, kin), (kout, kin), (kout,))))
    # transformer linears at the token counts models run them with (ViT-B/32 at 224: 50, ViT-B/16: 197, Swin's
    # second stage: 784) and ConvNeXt's narrow first-stage MLP (3136 tokens, 96 <-> 384): GEMM efficiency
    # moves steeply with the rows between 32 and 512, where a FLOP curve fitted on powers of two interpolates
    for m, kin, kout in TRANSFORMER_LINEARS:
        if 2 * m * kin * kout <= cap:
            out.append(Bench("matmul", "linear", F.linear, ((m, kin), (kout, kin), (kout,))))
    for n in _pick((64, 128, 256, 512, 1024) + ((4096, 8192) if big else ()), quick):
        out.append(Bench("matmul", "mm", torch.mm, ((n, n), (n, n))))

    # bmm: attention scores / outputs and fused SDPA, (batch*heads, seq, 64)
    heads, d = 12, 64
    for b in batches:
        for s in _pick((32, 64, 128, 256, 512) + ((1024, 2048) if big else ()), quick):
            if 4.0 * b * heads * s * s * d > cap:
                continue
            bh = b * heads
            out.append(Bench("bmm", "bmm", torch.bmm, ((bh, s, d), (bh, d, s))))
            out.append(Bench("bmm", "bmm", torch.bmm, ((bh, s, s), (bh, s, d))))
            out.append(Bench("bmm", "sdpa", _sdpa, ((b, heads, s, d),) * 3))
        # softmax over attention scores: rows as long as a window (Swin/MaxViT 49) or a ViT sequence (197), not
        # only the 128 of the element sweep (a row's reductions cost per row, not per byte); a shifted-window roll
        for s in (49, 197):
            out.append(Bench("softmax", "softmax (attention)", torch.softmax, ((b * heads, s, s),), {"dim": -1}))
        for c, side in ((96, 56), (384, 14)):
            out.append(Bench("elementwise", "roll", _roll, ((b, side, side, c),)))

    # convolution: (in ch, out ch, side, kernel, stride, groups), by kind, over the batch sweep
    for b in conv_batches:
        for kind, shapes in _CONVS.items():
            picked = _pick(shapes, quick, 2 if b == 1 or kind == "grouped" else 3)
            if quick and kind == "dense" and b > 1:
                # dense convolutions vary most in efficiency with their shape: above batch 1 the shapes batch 1
                # skipped (3x3 at 56..14 px, DenseNet's 128 -> 32), and both stems (3x3 and 7x7: 27 and 147 MACs per
                # output element, which separates a stem's output cost from its FLOPs, fitting.OUTPUT_TERM_CLASSES)
                picked = [*shapes[1::2], shapes[6], shapes[0]]
            for cin, cout, side, k, stride, groups in picked:
                if _conv_flops(b, cin, cout, side, k, stride, groups) > cap:
                    continue
                out.append(Bench("convolution", f"conv2d {kind} k{k}", F.conv2d,
                                 ((b, cin, side, side), (cout, cin // groups, k, k), (cout,)),
                                 {"stride": stride, "padding": k // 2 if stride < k else 0, "groups": groups}))

    # memory-bound families, by number of elements
    sizes = (2**10, 2**13, 2**16, 2**18, 2**20, 2**22) + ((2**24, 2**26) if big else ())
    for n in _pick(sizes, quick):
        out += [Bench("elementwise", "add", torch.add, ((n,), (n,))),
                Bench("elementwise", "mul", torch.mul, ((n,), (n,))),
                Bench("elementwise", "relu", F.relu, ((n,),)),
                # the activation and tanh classes (fxenergy.perf.cpu.ACTIVATION_OPS): a function per element
                Bench("elementwise", "gelu", F.gelu, ((n,),)),
                Bench("elementwise", "tanh", torch.tanh, ((n,),)),
                Bench("elementwise", "hardswish", F.hardswish, ((n,),)),
                Bench("elementwise", "silu", F.silu, ((n,),)),
                Bench("elementwise", "sigmoid", torch.sigmoid, ((n,),))]
        if not quick:
            out += [Bench("elementwise", "hardtanh", F.hardtanh, ((n,),))]
        # in place on a hot input, as a network runs relu_ / add_ / hardswish_ right after the op that wrote the
        # tensor (the ``inplace`` class, fxenergy.perf.cpu.INPLACE_BENCH_OPS)
        out += [Bench("elementwise", "relu_", _relu_, ((n,),), hot=True),
                Bench("elementwise", "add_", _add_, ((n,), (n,)), hot=True),
                Bench("elementwise", "hardsigmoid_", _hardsigmoid_, ((n,),), hot=True)]
        rows = max(1, n // 768)
        out.append(Bench("normalization", "layer_norm", _layer_norm, ((rows, 768), (768,), (768,))))
        out.append(Bench("softmax", "softmax", torch.softmax, ((max(1, n // 128), 128),), {"dim": -1}))
        out.append(Bench("reduction", "sum", _last_sum, ((max(1, n // 768), 768),)))
        out.append(Bench("embedding", "embedding", F.embedding, (((max(1, n // 768),), 30522), (30522, 768))))
        out.append(Bench("embedding", "embedding (positions)", F.embedding, (((max(1, n // 768),), 1024), (1024, 768))))
        out.append(Bench("embedding", "contiguous", _contiguous_t, ((max(1, n // 8192), 128, 64),)))
    for b in batches:
        for c, side in _pick(((32, 112), (64, 112), (64, 56), (128, 28), (256, 14), (512, 7), (1024, 7), (2048, 7),
                              (960, 4), (1280, 2)), quick):
            x = (b, c, side, side)
            out.append(Bench("normalization", "batch_norm", _batch_norm, (x, (c,), (c,), (c,), (c,))))
            # relu_ right after the batch norm that wrote its input, as networks run it: the fit takes the batch
            # norm's row of the same shape off (fxenergy.perf.cpu.INPLACE_AFTER_PRODUCER)
            out.append(Bench("elementwise", "relu_ after batch_norm", _batch_norm_relu_, (x, (c,), (c,), (c,), (c,)),
                             producer="normalization"))
            if not quick:
                out.append(Bench("normalization", "group_norm", _group_norm, (x, (c,), (c,))))
            out.append(Bench("reduction", "mean", _spatial_mean, (x,)))
            out.append(Bench("embedding", "cat", _cat, (x, (b, 32, side, side))))
            out.append(Bench("embedding", "permute NCHW->NHWC", _nhwc_copy, (x,)))
            out.append(Bench("elementwise", "mul (SE scale)", torch.mul, (x, (b, c, 1, 1))))
            out.append(Bench("elementwise", "add (bias broadcast)", _bias_add, (x, (c,))))
        # pooling as in ResNet/DenseNet stems, SqueezeNet (ceil mode), VGG, DenseNet transitions, VGG's head
        for op, c, side, kw in _pick(_POOLS, quick):
            fn = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d, "adaptive_avg_pool2d": F.adaptive_avg_pool2d}[op]
            out.append(Bench("pooling", op, cast(Callable[..., Any], fn), ((b, c, side, side),), kw))
    return out


