"""SDPA on CUDA: the backend PyTorch picks per dtype/device/shape, and its fused-kernel pricing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fxenergy.hardware import load_profile
from fxenergy.perf.kernels import fused_attention_kernel, is_sdpa_target, sdpa_backend


def test_backend_follows_pytorch_rules():
    f32, f16, bf16 = torch.float32, torch.float16, torch.bfloat16
    assert sdpa_backend(f32, 64, 64, has_mask=False, sm80_or_newer=True) == "efficient"  # flash is half-only
    assert sdpa_backend(f32, 64, 64, has_mask=True, sm80_or_newer=False) == "efficient"  # sm50+ incl. V100/T4
    assert sdpa_backend(f16, 64, 64, has_mask=False, sm80_or_newer=True) == "flash"
    assert sdpa_backend(f16, 64, 64, has_mask=True, sm80_or_newer=True) == "efficient"  # flash takes no mask
    assert sdpa_backend(f16, 64, 64, has_mask=False, sm80_or_newer=False) == "efficient"  # flash needs sm80
    assert sdpa_backend(bf16, 64, 64, has_mask=False, sm80_or_newer=False) == "math"
    assert sdpa_backend(f32, 62, 62, has_mask=False, sm80_or_newer=True) == "math"  # fp32 sm80 alignment is 4
    assert sdpa_backend(f32, 62, 62, has_mask=False, sm80_or_newer=False) == "efficient"
    assert sdpa_backend(torch.float64, 64, 64, has_mask=False, sm80_or_newer=True) == "math"
    assert is_sdpa_target(F.scaled_dot_product_attention) and not is_sdpa_target(torch.matmul)


def test_fused_kernel_moves_no_scores():
    k = fused_attention_kernel(16, 2048, 2048, 128, 128, torch.float32, backend="efficient")
    assert k.bytes == 4 * 16 * 4 * 2048 * 128  # q, k, v, o: O(S·d)
    assert k.flops == 2.0 * 16 * 2048 * 2048 * 256
    causal = fused_attention_kernel(16, 2048, 2048, 128, 128, torch.float32, backend="efficient", causal=True)
    assert causal.flops == k.flops / 2


class _Attn(torch.nn.Module):
    def forward(self, q, k, v, mask):  # noqa: ANN001, ANN201
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("device", ["a100-80gb-pcie", "t4"])
def test_sdpa_node_priced_as_one_fused_kernel(device, monkeypatch):
    import fxenergy.perf.model as pm
    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    b, h, s, d = 2, 16, 1024, 64
    q = torch.empty(b, h, s, d, device="meta")
    mask = torch.empty(1, 1, s, s, dtype=torch.bool, device="meta")
    a = analyse(_Attn(), (q, q, q, mask))
    prof = load_profile(device)
    node = next(n for n in a.graph_module.graph.nodes if n.op == "call_function" and is_sdpa_target(n.target))
    fused = predict(a, resolve(device, "learned")).duration_s[node.name]
    monkeypatch.setattr(pm, "sdpa_kernels_of_calls", lambda *a, **k: None)  # the math decomposition, call by call
    math_path = predict(a, resolve(device, "learned")).duration_s[node.name]
    assert fused < math_path
    peak = prof.peak_flops["tf32"] / 3 if "tf32" in prof.peak_flops else prof.peak_flops["fp32"]
    assert fused >= 2.0 * b * h * s * s * 2 * d / max(peak, prof.peak_flops["fp32"])  # never below its own bound


def test_math_pricing_can_be_chosen():
    from fxenergy.analysis import analyse
    from fxenergy.passes.durations import DurationPass  # noqa: F401 - the pass the model feeds
    from fxenergy.perf.model import LearnedGPUModel

    q = torch.empty(1, 8, 512, 64, device="meta")
    mask = torch.empty(1, 1, 512, 512, dtype=torch.bool, device="meta")
    a = analyse(_Attn(), (q, q, q, mask))
    prof = load_profile("a100-80gb-pcie")
    with pytest.raises(Exception, match="sdpa pricing"):
        LearnedGPUModel(prof, sdpa="flash")
    assert LearnedGPUModel(prof, sdpa="math").sdpa == "math" and a is not None
