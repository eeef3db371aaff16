"""Kernels: what one ATen call (or one measured PyTorch call) asks of a GPU, by op family.

Families (the issue's six): ``gemm`` (linear, mm, addmm, bmm, baddbmm, matmul, the pieces of
attention), ``conv`` (dense, grouped/depthwise, 1x1, transposed; as an implicit GEMM),
``elementwise``, ``reduction`` (reductions, softmax, normalisation, pooling), ``gather``
(embedding, index, gather/scatter) and ``copy`` (copies and layout changes).

A GEMM is described by ``batch × (m × k) @ (k × n)``; a convolution by its implicit GEMM
(``m = N·H_out·W_out``, ``n = C_out/groups``, ``k = C_in/groups·k_h·k_w``, ``batch = groups``) plus its
window and whether it is grouped. Memory-bound kernels by ``rows × cols`` (``cols`` the reduced or
innermost length). FLOPs follow torch.utils.flop_counter (2 per multiply-accumulate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils import _pytree as pytree

from fxenergy.records import OpCall, TensorSpec

__all__ = ["FAMILIES", "WINOGRAD_MULTIPLY_FACTOR", "winograd_eligible", "winograd_saved_flops", "Kernel", "kernels_of_call", "sdpa_backend", "sdpa_kernels_of_calls", "is_sdpa_target", "foreach_launches", "optimizer_period", "gemm_kernel", "conv_kernel", "memory_kernel", "family_of_op"]

FAMILIES = ("gemm", "conv", "elementwise", "reduction", "gather", "copy")

# The fewest multiplies a 3x3, stride-1 convolution can be computed with, relative to the direct count (the FLOPs we
# report, which equal FlopCounterMode's and do not change): cuDNN runs such convolutions (forward, and backward-data,
# which is the same 3x3 stride-1 correlation with the flipped weights) as Winograd. F(2x2,3x3) needs 16 multiplies per
# 2x2 output tile and channel pair instead of 36 (2.25x fewer); F(4x4,3x3), cuDNN's non-fused Winograd, 36 instead of
# 144 (4x fewer). The data picks the larger one: on gpu-kernels-neusight (fp32, all 3x3 stride 1) 20-31% of the conv
# rows of every GPU run faster than the direct-count roofline, and 0.34% of the T4's even faster than that roofline /
# 2.25 (fastest: 0.384x on the T4, 0.45x on the P4, P100 and V100); none is below the roofline / 4
# (scripts/gpu_conv_winograd.py). The transforms' additions run on the same units and are not counted: a lower bound.
WINOGRAD_MULTIPLY_FACTOR = 4.0


def winograd_eligible(kernel_size: tuple[int, ...], stride: tuple[int, ...] | int = 1, dilation: tuple[int, ...] | int = 1,
                      groups: int = 1, transposed: bool = False) -> bool:
    """Whether cuDNN may run a convolution as Winograd (so that its physical lower bound counts
    ``1 / WINOGRAD_MULTIPLY_FACTOR`` of its direct multiplies): a 2D 3x3 kernel, stride 1, dilation 1, one group,
    not transposed."""
    def ones(v: tuple[int, ...] | int) -> bool:
        return all(int(x) == 1 for x in ((v,) if isinstance(v, int) else v))
    return (tuple(int(x) for x in kernel_size) == (3, 3) and ones(stride) and ones(dilation) and int(groups) == 1
            and not transposed)

_GEMM_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "addmv", "mv", "dot", "_addmm_activation", "addbmm",
             "_grouped_mm", "transformers::grouped_mm_fallback"}
_ATTENTION_OPS = {"_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                  "_scaled_dot_product_cudnn_attention", "scaled_dot_product_attention",
                  "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_attention_math"}
_CONV_OPS = {"convolution", "_convolution", "conv1d", "conv2d", "conv3d", "cudnn_convolution", "conv_transpose2d",
             "convolution_backward"}
_REDUCTION_PREFIXES = ("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "var", "std", "norm",
                       "linalg_vector_norm", "logsumexp", "_softmax", "_log_softmax", "_safe_softmax", "native_batch_norm",
                       "_native_batch_norm", "cudnn_batch_norm", "native_layer_norm", "native_group_norm",
                       "avg_pool", "max_pool", "_adaptive_avg_pool", "adaptive_max_pool", "adaptive_avg_pool",
                       "nll_loss", "cross_entropy", "_log_softmax_backward", "_softmax_backward", "cumsum", "topk", "sort",
                       "histc")
_GATHER_OPS = {"embedding", "embedding_dense_backward", "index_select", "gather", "index", "scatter", "scatter_add",
               "index_put", "index_add", "_unsafe_index", "_unsafe_index_put", "masked_fill", "where", "_index_put_impl_",
               "index_put_", "scatter_add_", "masked_scatter"}
_COPY_OPS = {"cat", "stack", "clone", "_to_copy", "copy", "copy_", "constant_pad_nd", "repeat", "slice_scatter",
             "contiguous", "new_zeros", "zeros", "zeros_like", "ones_like", "full", "fill_", "zero_", "empty_like",
             "select_scatter", "as_strided_scatter", "flip", "roll", "tril", "triu", "_unsafe_view", "expand_copy",
             "permute_copy", "transpose_copy", "split_with_sizes_copy", "lift_fresh_copy", "arange", "ones", "full_like",
             "pixel_shuffle", "upsample_nearest2d", "upsample_bilinear2d"}


def family_of_op(op: str) -> str:
    """The perf-model family of an ATen op name (``"addmm"``, ``"native_layer_norm"``, ...)."""
    base = op.split(".", 1)[0]
    if base in _GEMM_OPS or base in _ATTENTION_OPS:
        return "gemm"
    if base in _CONV_OPS or base.startswith("convolution"):
        return "conv"
    if base in _GATHER_OPS:
        return "gather"
    if base in _COPY_OPS:
        return "copy"
    if base.startswith(_REDUCTION_PREFIXES):
        return "reduction"
    return "elementwise"


@dataclass(frozen=True, slots=True)
class Kernel:
    """One kernel's demands. Units: FLOPs (2 per MAC), bytes; dims are element counts."""

    family: str
    dtype: torch.dtype
    flops: float  # matrix FLOPs (gemm, conv)
    ew_flops: float  # other arithmetic (vector units)
    bytes: float  # bytes read + written (an unfused kernel)
    batch: int = 1
    m: int = 1
    n: int = 1
    k: int = 1
    window: int = 1  # conv k_h * k_w
    grouped: bool = False  # grouped / depthwise conv
    rows: int = 1  # memory kernels: outer rows
    cols: int = 1  # memory kernels: innermost or reduced length
    backward: bool = False  # a gradient kernel (dgrad/wgrad, *_backward)
    # a fused attention tile kernel whose fp32 products run as 3xTF32 on tensor cores where the GPU has TF32
    # (CUTLASS "FastF32"); the model prices it against tf32_peak / 3 instead of the fp32 peak
    fast_fp32: bool = False
    # memory kernels: a softmax (PyTorch's softmax kernels keep a row on chip or re-read it, unlike a norm's
    # two-pass kernel of the same size and arithmetic): a feature of the memory model
    softmax: bool = False
    # memory kernels: a layer norm's row kernel (forward), the one non-softmax reduction the memory law was fitted on
    # (gpu-kernels-neusight has no other reduction rows); other reductions keep the reduction forest
    layer_norm: bool = False
    # a conv kernel cuDNN may run as Winograd (winograd_eligible): its roofline counts 1 / WINOGRAD_MULTIPLY_FACTOR
    # of its multiplies as the least it can do (Kernel.flops stays the direct count)
    winograd: bool = False

    @property
    def min_flops(self) -> float:
        """The fewest matrix FLOPs any algorithm needs (the direct count, over the Winograd factor where eligible)."""
        return self.flops / WINOGRAD_MULTIPLY_FACTOR if self.winograd else self.flops


SOFTMAX_OPS = ("_softmax", "_log_softmax", "_safe_softmax")
LAYER_NORM_OPS = ("native_layer_norm", "layer_norm", "rms_norm", "_fused_rms_norm")


def gemm_kernel(batch: int, m: int, n: int, k: int, dtype: torch.dtype, *, bias: bool = False,
                backward: bool = False, extra_bytes: float = 0.0) -> Kernel:
    es = _elem_size(dtype)
    nbytes = es * batch * (m * k + k * n + m * n + (m * n if bias else 0)) + extra_bytes
    return Kernel("gemm", dtype, 2.0 * batch * m * n * k, batch * m * n if bias else 0.0, float(nbytes),
                  batch=batch, m=m, n=n, k=k, backward=backward)


def conv_kernel(n_batch: int, c_in: int, c_out: int, kh: int, kw: int, h_out: int, w_out: int, h_in: int, w_in: int,
                groups: int, dtype: torch.dtype, *, backward: bool = False, winograd: bool = False) -> Kernel:
    es = _elem_size(dtype)
    m = n_batch * h_out * w_out
    n = max(c_out // groups, 1)
    k = max(c_in // groups, 1) * kh * kw
    nbytes = es * (n_batch * c_in * h_in * w_in + c_out * (c_in // max(groups, 1)) * kh * kw + n_batch * c_out * h_out * w_out)
    return Kernel("conv", dtype, 2.0 * groups * m * n * k, 0.0, float(nbytes), batch=groups, m=m, n=n, k=k,
                  window=kh * kw, grouped=groups > 1, backward=backward, winograd=winograd)


def memory_kernel(family: str, rows: int, cols: int, dtype: torch.dtype, nbytes: float, ew_flops: float,
                  *, backward: bool = False, softmax: bool = False, layer_norm: bool = False) -> Kernel:
    return Kernel(family, dtype, 0.0, float(ew_flops), float(nbytes), rows=max(int(rows), 1), cols=max(int(cols), 1),
                  backward=backward, softmax=softmax, layer_norm=layer_norm)


def _elem_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype, device="meta").element_size()


def _tensors(tree: object) -> list[TensorSpec]:
    return [x for x in pytree.tree_leaves(tree) if isinstance(x, TensorSpec)]


def _float_dtype(call: OpCall) -> torch.dtype:
    for t in _tensors((call.args, call.out)):
        if t.dtype.is_floating_point:
            return t.dtype
    return torch.float32


def kernels_of_call(call: OpCall, flops: float, ew_flops: float, nbytes: float) -> list[Kernel]:
    """The kernels one traced ATen call launches, given its cost figures (from :mod:`fxenergy.passes.costs`)."""
    name = call.name if hasattr(call, "name") else str(call.op)
    op = name.removeprefix("aten.").split(".", 1)[0]
    fam = family_of_op(op)
    dtype = _float_dtype(call)
    backward = "backward" in op
    args = call.args
    try:
        if fam == "gemm":
            if op in _ATTENTION_OPS:
                return _attention_kernels(args, dtype, nbytes)
            g = _gemm_dims(op, args)
            if g is not None:
                b, m, n, k = g
                kern = gemm_kernel(b, m, n, k, dtype, backward=backward)
                return [_with(kern, flops=flops or kern.flops, ew_flops=ew_flops, nbytes=nbytes)]
        elif fam == "conv":
            return _conv_kernels(op, args, call.out, dtype, flops, nbytes)
        elif op in _BN_TRAIN_ARG:
            bn = _batch_norm_training_kernels(op, args, dtype)
            if bn is not None:
                return bn
    except (IndexError, TypeError, AttributeError, ValueError, ZeroDivisionError):
        pass  # an unusual signature: costed as a memory kernel below, from its cost figures
    if fam in ("gemm", "conv"):
        fam = "elementwise"
    outs = _tensors(call.out)
    ins = _tensors(args)
    ref = outs[0] if outs else (ins[0] if ins else None)
    shape = tuple(ref.shape) if ref is not None else (1,)
    if fam == "reduction" and ins:
        shape = tuple(ins[0].shape)
    cols = int(shape[-1]) if shape else 1
    rows = max(math.prod(int(s) for s in shape) // max(cols, 1), 1) if shape else 1
    return [memory_kernel(fam, rows, cols, dtype, nbytes, ew_flops, backward=backward, softmax=op in SOFTMAX_OPS,
                          layer_norm=fam == "reduction" and op in LAYER_NORM_OPS)]


def winograd_saved_flops(calls: object) -> float:
    """Matrix FLOPs of a node's traced calls (``NodeTrace.calls``) that a Winograd convolution does not need:
    ``flops - min_flops`` summed over their Winograd-eligible conv kernels (0 for every other node). The physical
    lower bound of a node counts ``cost.flops`` minus this."""
    saved = 0.0
    for call in calls:  # type: ignore[attr-defined]
        name = call.name if hasattr(call, "name") else str(call.op)
        if family_of_op(name.removeprefix("aten.").split(".", 1)[0]) != "conv":
            continue
        for k in kernels_of_call(call, 0.0, 0.0, 0.0):
            saved += k.flops - k.min_flops
    return saved


def _with(k: Kernel, *, flops: float, ew_flops: float, nbytes: float) -> Kernel:
    from dataclasses import replace

    return replace(k, flops=float(flops), ew_flops=float(ew_flops), bytes=float(nbytes) if nbytes else k.bytes)


def _gemm_dims(op: str, args: tuple) -> tuple[int, int, int, int] | None:
    ts = [a for a in args if isinstance(a, TensorSpec)]
    if op in ("addmm", "_addmm_activation"):
        a, b = ts[1], ts[2]
        return 1, a.shape[0], b.shape[1], a.shape[1]
    if op == "mm":
        a, b = ts[0], ts[1]
        return 1, a.shape[0], b.shape[1], a.shape[1]
    if op in ("bmm",):
        a, b = ts[0], ts[1]
        return a.shape[0], a.shape[1], b.shape[2], a.shape[2]
    if op in ("baddbmm",):
        a, b = ts[1], ts[2]
        return a.shape[0], a.shape[1], b.shape[2], a.shape[2]
    if op in ("addmv", "mv"):
        a = ts[-2]
        return 1, a.shape[0], 1, a.shape[1]
    if op == "dot":
        return 1, 1, 1, ts[0].shape[0]
    if op in ("_grouped_mm", "transformers::grouped_mm_fallback"):
        # S routed rows (S, K) over E experts' weights (E, K, N): E GEMMs of S / E rows each on average (the
        # split is data-dependent and unknown on meta tensors)
        a, w = ts[0], ts[1]
        e = w.shape[0]
        return e, max(math.ceil(a.shape[0] / e), 1), w.shape[2], a.shape[1]
    if op in ("matmul", "linear"):
        a, b = ts[0], ts[1]
        m = math.prod(a.shape[:-1])
        n = b.shape[0] if op == "linear" else b.shape[-1]
        return 1, m, n, a.shape[-1]
    return None


def _attention_kernels(args: tuple, dtype: torch.dtype, nbytes: float) -> list[Kernel]:
    """SDPA as its pieces: Q·Kᵀ, a row softmax, A·V (what eager fp32 attention runs)."""
    q, k, v = args[0], args[1], args[2]
    lead = math.prod(q.shape[:-2])
    lq, d = q.shape[-2], q.shape[-1]
    lk, dv = k.shape[-2], v.shape[-1]
    es = _elem_size(dtype)
    score = gemm_kernel(lead, lq, lk, d, dtype)
    soft = memory_kernel("reduction", lead * lq, lk, dtype, 2.0 * es * lead * lq * lk, 5.0 * lead * lq * lk, softmax=True)
    out = gemm_kernel(lead, lq, dv, lk, dtype)
    return [score, soft, out]


# batch norm ops and the position of their ``training`` flag
_BN_TRAIN_ARG = {"native_batch_norm": 5, "_native_batch_norm_legit": 5, "_native_batch_norm_legit_functional": 5,
                 "cudnn_batch_norm": 5, "native_batch_norm_backward": 7, "cudnn_batch_norm_backward": None}


def _batch_norm_training_kernels(op: str, args: tuple, dtype: torch.dtype) -> list[Kernel] | None:
    """Batch norm in training mode on CUDA (cuDNN spatial mode or ATen's native kernels) is two passes
    over the activations, not one: forward = a per-channel statistics reduction (reads x) and the
    normalisation (reads x, writes y); backward = a per-channel reduction of dy and dy·x̂ (reads dy, x)
    and the element-wise dx (reads dy, x, writes dx). Five activation-sized transfers in backward and
    three in forward, where the single-kernel view counted three and two. ``None`` in eval mode
    (one element-wise pass) or for an unusual signature."""
    pos = _BN_TRAIN_ARG.get(op)
    if pos is not None and not (len(args) > pos and args[pos] is True):
        return None
    x = args[1] if "backward" in op else args[0]
    if not isinstance(x, TensorSpec) or len(x.shape) < 2:
        return None
    es = _elem_size(dtype)
    n = x.numel
    c = int(x.shape[1])
    per_c = max(n // max(c, 1), 1)
    back = "backward" in op
    reads_red = 2 if back else 1
    red = memory_kernel("reduction", c, per_c, dtype, es * n * reads_red, 2.0 * n * reads_red, backward=back)
    elem = memory_kernel("elementwise", max(n // per_c, 1), per_c, dtype, es * n * 3 if back else es * n * 2,
                         (4.0 if back else 2.0) * n, backward=back)
    return [red, elem]


SDPA_BACKENDS = ("flash", "efficient", "math")


def is_sdpa_target(target: object) -> bool:
    """Whether an FX node target is ``F.scaled_dot_product_attention`` (or one of its ATen ops)."""
    name = getattr(target, "__name__", None) or str(target)
    base = name.removeprefix("aten.").split(".", 1)[0]
    return base == "scaled_dot_product_attention" or base in _ATTENTION_OPS


def sdpa_backend(dtype: torch.dtype, head_dim_qk: int, head_dim_v: int, *, has_mask: bool, sm80_or_newer: bool) -> str:
    """The CUDA kernel PyTorch's SDPA dispatch picks (``flash``, ``efficient`` or ``math``).

    Read off ``aten/src/ATen/native/transformers/cuda/sdp_utils.cpp`` (PyTorch 2.x; rules restated, not
    copied): priority flash > memory-efficient > math (cuDNN attention, first on sm90+ in recent releases,
    is fp16/bf16-only like flash and is priced as flash). Flash needs fp16/bf16, sm80+, equal head dims
    <= 256 and no arbitrary ``attn_mask`` (``is_causal`` only). The memory-efficient kernel takes fp32,
    fp16 and bf16 on sm50+, an additive mask, and head dims divisible by the GEMM alignment (4 elements for
    fp32 on sm80+, where it runs on tensor cores; 8 for fp16/bf16; 1 for fp32 before sm80). Anything else
    (fp64, odd head dims) falls back to the math decomposition Q·Kᵀ, softmax, A·V.
    """
    half = dtype in (torch.float16, torch.bfloat16)
    if half and sm80_or_newer and not has_mask and head_dim_qk == head_dim_v and head_dim_qk <= 256:
        return "flash"
    if dtype == torch.bfloat16 and not sm80_or_newer:
        return "math"
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        align = 8 if half else (4 if sm80_or_newer else 1)
        if head_dim_qk % align == 0 and head_dim_v % align == 0 and head_dim_qk > 0 and head_dim_v > 0:
            return "efficient"
    return "math"


def fused_attention_kernel(lead: int, lq: int, lk: int, d: int, dv: int, dtype: torch.dtype, *, backend: str,
                           causal: bool = False, mask_bytes: float = 0.0, sm80_or_newer: bool = False) -> Kernel:
    """One fused attention kernel (flash or memory-efficient): Q·Kᵀ, online softmax and A·V per query tile.

    The scores never reach DRAM: traffic is Q, K, V, O and the mask (``O(S·d)``, not ``O(S²)``). Matrix
    FLOPs are both products (``2·lead·lq·lk·(d + dv)``, halved under ``is_causal``: masked tiles are
    skipped), plus ~5 vector FLOPs per score (scale, max, exp, sum, rescale). For the wave features it is
    described as a GEMM of output ``lq x dv`` per (batch·head) with depth ``lk·(d + dv) / dv``: one thread
    block per query tile and head, as the kernels launch. fp32 on sm80+ runs 3xTF32 (``fast_fp32``).
    """
    es = _elem_size(dtype)
    frac = 0.5 if causal and lq == lk else 1.0
    flops = 2.0 * lead * lq * lk * (d + dv) * frac
    nbytes = es * lead * (lq * d + lk * d + lk * dv + lq * dv) + mask_bytes
    depth = max(int(round(lk * (d + dv) * frac / max(dv, 1))), 1)
    return Kernel("gemm", dtype, flops, 5.0 * lead * lq * lk * frac, float(nbytes), batch=lead, m=lq, n=dv, k=depth,
                  fast_fp32=(dtype == torch.float32 and sm80_or_newer and backend == "efficient"))


def sdpa_kernels_of_calls(calls: list[OpCall] | tuple[OpCall, ...], *,
                          sm80_or_newer: bool) -> tuple[str, list[Kernel], tuple[int, ...]] | None:
    """``(backend, kernels, kept)`` for one SDPA node from the calls its meta capture dispatched, or
    ``None`` where PyTorch would run the math decomposition on CUDA (the calls are then priced one by one).

    On meta/CPU tensors SDPA dispatches its math decomposition (two bmm, an additive mask, a softmax), or
    one fused ATen op when captured from a CUDA-like backend; the shapes are read from either. ``kept``
    are the indices of calls that still run as kernels of their own before the fused one: a boolean
    mask is turned into an additive float mask by one ``where`` before any backend is chosen.
    """
    fused = [c for c in calls if c.op is not None and _call_base(c) in _ATTENTION_OPS]
    mask_bytes, has_mask, causal = 0.0, False, False
    if fused:
        c = fused[0]
        q, k, v = c.args[0], c.args[1], c.args[2]
        lead, lq, d = math.prod(q.shape[:-2]), q.shape[-2], q.shape[-1]
        lk, dv = k.shape[-2], v.shape[-1]
        dtype = q.dtype
        extra = [a for a in list(c.args[3:]) + list(c.kwargs.values()) if isinstance(a, TensorSpec)]
        if extra:
            has_mask, mask_bytes = True, float(sum(t.nbytes for t in extra))
        causal = bool(c.kwargs.get("is_causal", False)) or any(a is True for a in c.args[3:6])
    else:
        bmms = [c for c in calls if _call_base(c) in ("bmm", "baddbmm", "matmul")]
        if len(bmms) != 2:
            return None
        s_a, s_b = _tensors(bmms[0].args)[-2:], _tensors(bmms[1].args)[-2:]
        lead, lq, d = math.prod(s_a[0].shape[:-2]), s_a[0].shape[-2], s_a[0].shape[-1]
        lk, dv = s_a[1].shape[-1], s_b[1].shape[-1]
        dtype = s_a[0].dtype
        for c in calls:  # an additive / boolean mask over the scores (the math path's add or masked_fill)
            if _call_base(c) in ("add", "masked_fill", "where", "add_") and c is not bmms[0]:
                ts = _tensors(c.args)
                big = [t for t in ts if len(t.shape) >= 2 and tuple(t.shape[-2:]) == (lq, lk)]
                if len(big) >= 2 or (_call_base(c) != "add" and big):
                    has_mask = True
                    mask_bytes = max(mask_bytes, float(min(t.nbytes for t in big)))
    backend = sdpa_backend(dtype, d, dv, has_mask=has_mask, sm80_or_newer=sm80_or_newer)
    if backend == "math":
        return None
    first = next((i for i, c in enumerate(calls) if c in fused or _call_base(c) in ("bmm", "baddbmm", "matmul")), 0)
    kept = tuple(i for i, c in enumerate(calls[:first])
                 if _call_base(c) in ("where", "masked_fill", "logical_not", "_to_copy")
                 and any(t.dtype == torch.bool for t in _tensors(c.args)))
    return backend, [fused_attention_kernel(lead, lq, lk, d, dv, dtype, backend=backend, causal=causal,
                                            mask_bytes=mask_bytes, sm80_or_newer=sm80_or_newer)], kept


def _call_base(call: OpCall) -> str:
    name = call.name if hasattr(call, "name") else str(call.op)
    return name.removeprefix("aten.").split(".", 1)[0]


# multi_tensor_apply (ATen/native/cuda/MultiTensorApply.cuh): one launch takes at most this many tensors per
# list depth (1..5 lists), at most 320 blocks, each block one 65536-element chunk of one tensor
FOREACH_MAX_TENSORS = (110, 64, 48, 36, 30)
FOREACH_MAX_BLOCKS = 320
FOREACH_CHUNK = 65536


def foreach_launches(numels: list[int], depth: int) -> int:
    """Kernel launches of one ``torch._foreach_*`` op over tensors of ``numels`` elements with ``depth``
    tensor lists (in-place scalar op: 1; in-place binary: 2; ``addcmul_``: 3). A launch is issued when
    its tensor slots or its block slots are full; the count follows those two limits."""
    depth = min(max(depth, 1), len(FOREACH_MAX_TENSORS))
    max_t = FOREACH_MAX_TENSORS[depth - 1]
    launches, tensors, blocks = 0, 0, 0
    for n in numels:
        chunks = max(math.ceil(n / FOREACH_CHUNK), 1)
        tensors += 1
        while chunks:
            take = min(chunks, FOREACH_MAX_BLOCKS - blocks)
            blocks += take
            chunks -= take
            if blocks == FOREACH_MAX_BLOCKS or (tensors == max_t and not chunks):
                launches += 1
                blocks = 0
                tensors = 0 if not chunks else 1
    return launches + (1 if blocks else 0)


def optimizer_period(names: list[str]) -> int | None:
    """The length of the per-parameter op sequence of a single-tensor optimizer step (``mul_, add_, add_``
    for momentum SGD), or ``None`` when the sequence does not repeat once per parameter."""
    n = len(names)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and all(names[i] == names[i % p] for i in range(n)):
            return p
    return None


def _conv_kernels(op: str, args: tuple, out: object, dtype: torch.dtype, flops: float, nbytes: float) -> list[Kernel]:
    if op == "convolution_backward":
        grad_out, x, w = args[0], args[1], args[2]
        transposed, groups = args[7], args[9]  # (stride, padding, dilation: args[4:7], read by _conv_geom from shapes)
        mask = args[10] if len(args) > 10 else (True, True, True)
        fwd = _conv_geom(x, w, grad_out, bool(transposed), int(groups))
        wino = winograd_eligible(tuple(w.shape[2:]), args[4], args[6], int(groups), bool(transposed))
        kerns = []
        if mask[0]:  # dgrad: a convolution of grad_out with the flipped weights (stride 1: Winograd too)
            dgrad = conv_kernel(fwd["n"], fwd["c_out"], fwd["c_in"], fwd["kh"], fwd["kw"], fwd["h_in"], fwd["w_in"],
                                fwd["h_out"], fwd["w_out"], fwd["groups"], dtype, backward=True, winograd=wino)
            strides = (args[4],) if isinstance(args[4], int) else tuple(args[4])
            if not transposed and any(int(v) > 1 for v in strides):
                dgrad = _strided_dgrad(dgrad, fwd)
            kerns.append(dgrad)
        if mask[1]:  # wgrad: a GEMM (C_in/g·k_h·k_w) x (C_out/g) over K = N·H_out·W_out, split along K
            kerns.append(_wgrad_kernel(fwd, dtype, float(x.nbytes + grad_out.nbytes + w.nbytes)))
        if mask[2]:
            es = _elem_size(dtype)
            kerns.append(memory_kernel("reduction", fwd["c_out"], fwd["n"] * fwd["h_out"] * fwd["w_out"], dtype,
                                       es * grad_out.numel, grad_out.numel, backward=True))
        return kerns or [memory_kernel("elementwise", 1, 1, dtype, nbytes, 0.0)]
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    groups = int(args[8]) if len(args) > 8 else 1
    o = _tensors(out)[0]
    g = _conv_geom(x, w, o, transposed, groups)
    wino = (len(args) > 5 and isinstance(w, TensorSpec)
            and winograd_eligible(tuple(w.shape[2:]), args[3], args[5], groups, transposed))
    kern = conv_kernel(g["n"], g["c_in"], g["c_out"], g["kh"], g["kw"], g["h_out"], g["w_out"], g["h_in"], g["w_in"],
                       g["groups"], dtype, winograd=wino)
    return [_with(kern, flops=flops or kern.flops, ew_flops=0.0, nbytes=nbytes)]


def _strided_dgrad(k: Kernel, fwd: dict[str, int]) -> Kernel:
    """The input gradient of a strided convolution does the forward's multiplies, not ``stride²`` times as many.

    Each multiply of the forward pass (one output position, one weight) has exactly one partner in the input
    gradient; the positions a stride skips contribute nothing. Seen as a convolution over every input position
    (``m = N·H_in·W_in``) the kernel reaches only ``1/stride²`` of the window per position; strided-dgrad kernels
    (CUTLASS's, for one) split it into ``stride²`` phases that skip the zeros (not checked on a measurement). So the depth ``k`` is the window
    share one input position sees, and the FLOPs are the forward's (what flop_counter counts for this term)."""
    from dataclasses import replace

    g = fwd["groups"]
    fwd_flops = 2.0 * fwd["n"] * fwd["h_out"] * fwd["w_out"] * fwd["c_out"] * max(fwd["c_in"] // g, 1) * fwd["kh"] * fwd["kw"]
    depth = max(int(round(fwd_flops / (2.0 * k.batch * k.m * k.n))), 1)
    return replace(k, k=depth, flops=fwd_flops)


SPLIT_K_TARGET_TILES = 256  # wgrad: split K until about this many 128x128 tiles are in flight
SPLIT_K_MIN_DEPTH = 1024  # ... but keep at least this much K per split


def _wgrad_kernel(fwd: dict[str, int], dtype: torch.dtype, nbytes: float) -> Kernel:
    """cuDNN/cuBLAS compute a weight gradient with split-K: its output (the weights) is small, its K large.

    The tile grid is therefore widened by the split factor; without it the wave features would see
    one partial wave and predict a far slower kernel than the libraries run.
    """
    g = fwd["groups"]
    m = max(fwd["c_in"] // g, 1) * fwd["kh"] * fwd["kw"]
    n = max(fwd["c_out"] // g, 1)
    k = fwd["n"] * fwd["h_out"] * fwd["w_out"]
    tiles = g * math.ceil(m / 128) * math.ceil(n / 128)
    split = max(1, min(k // SPLIT_K_MIN_DEPTH, math.ceil(SPLIT_K_TARGET_TILES / tiles)))
    return Kernel("conv", dtype, 2.0 * g * m * n * k, 0.0, nbytes, batch=g * split, m=m, n=n, k=max(k // split, 1),
                  window=1, grouped=g > 1, backward=True)


def _conv_geom(x: TensorSpec, w: TensorSpec, o: TensorSpec, transposed: bool, groups: int) -> dict[str, int]:
    """Input/output geometry of a 1-3D convolution, spatial dims flattened into (h, w=1) beyond 2D."""
    xs, ws, os_ = tuple(x.shape), tuple(w.shape), tuple(o.shape)
    spatial_in = math.prod(xs[2:]) if len(xs) > 2 else 1
    spatial_out = math.prod(os_[2:]) if len(os_) > 2 else 1
    window = math.prod(ws[2:]) if len(ws) > 2 else 1
    c_in, c_out = xs[1], os_[1]
    if transposed:  # a transposed conv is the dgrad of a forward conv: swap the roles
        return {"n": xs[0], "c_in": c_in, "c_out": c_out, "kh": window, "kw": 1, "h_out": spatial_in, "w_out": 1,
                "h_in": spatial_out, "w_in": 1, "groups": groups} | {"h_out": spatial_out, "h_in": spatial_in}
    return {"n": xs[0], "c_in": c_in, "c_out": c_out, "kh": window, "kw": 1, "h_out": spatial_out, "w_out": 1,
            "h_in": spatial_in, "w_in": 1, "groups": groups}
