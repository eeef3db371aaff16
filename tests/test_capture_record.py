"""The ``record`` capture (one eager run on fake tensors) against the ``export`` path it replaces.

Same model, same input, both methods: FLOPs, element-wise FLOPs, bytes read/written, parameter bytes
and the largest inter-layer working set must agree exactly, in total and per (module, phase) on the
forward pass; in training, backward and optimizer totals must agree too (backward nodes are one per
ATen call in both; only the engine's own gradient sums may sit under another module).
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import meta, tiny_llama
from torch import nn

import fxenergy
from fxenergy.testing import tiny_bert, tiny_t5

# few and varied: residual adds, multi-head attention, layer norm + stochastic depth
TV_TRAINING = ["resnet18", "vit_b_16", "convnext_tiny"]
COLUMNS = ("flops", "elementwise_flops", "bytes_read", "bytes_written", "param_bytes_read")


def _sums(r, phase=None, by_module=False):
    out: Counter = Counter()
    for row in r.rows:
        if phase is not None and row.phase != phase:
            continue
        key = (row.module_path, row.phase) if by_module else row.phase
        for c in COLUMNS:
            out[(key, c)] += getattr(row, c)
    return {k: v for k, v in out.items() if v}


def _both(model, args=(), kwargs=None, mode="inference", reference="export"):
    rec = fxenergy.annotate(model, args, example_kwargs=kwargs, mode=mode, method="record")
    ref = fxenergy.annotate(model, args, example_kwargs=kwargs, mode=mode, method=reference)
    assert rec.info["capture_method"] == "record" and ref.info["capture_method"] == reference
    return rec, ref


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert", "t5"])
def test_inference_matches_export(name, gpt2_small):
    ids = meta(2, 16, dtype=torch.long)
    model, kwargs = {
        "gpt2": (gpt2_small, {"input_ids": ids}),
        "llama": (tiny_llama(), {"input_ids": ids}),
        # with no attention mask, transformers' eager path (record) skips the all-ones mask that its export
        # path materialises (is_torchdynamo_exporting): pass one so that both take the same branch
        "bert": (tiny_bert(2), {"input_ids": ids, "attention_mask": meta(2, 16, dtype=torch.long)}),
        "t5": (tiny_t5(2), {"input_ids": ids, "attention_mask": meta(2, 16, dtype=torch.long),
                            "decoder_input_ids": meta(2, 8, dtype=torch.long),
                            "decoder_attention_mask": meta(2, 8, dtype=torch.long)}),
    }[name]
    rec, ref = _both(model, (), kwargs)
    assert _sums(rec, by_module=True) == _sums(ref, by_module=True)
    assert rec.totals.flops > 0
    assert rec.working_sets.inter_layer_max_bytes == ref.working_sets.inter_layer_max_bytes
    assert rec.info["param_bytes"] == ref.info["param_bytes"] and not rec.info["analysis_notes"]


def test_plain_module_matches_symbolic_trace():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 4)).eval()
    rec, ref = _both(m, torch.randn(2, 3, 16, 16), reference="symbolic_trace")
    assert _sums(rec, by_module=True) == _sums(ref, by_module=True)
    assert {r.module_type for r in rec.rows if r.macs} == {"Conv2d", "Linear"}


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", "sgd-momentum"])
def test_training_matches_export(gpt2_small, optimizer):
    kwargs = {"input_ids": meta(1, 16, dtype=torch.long)}
    rec = fxenergy.annotate(gpt2_small, (), example_kwargs=kwargs, mode="training", optimizer=optimizer,
                            method="record")
    ref = fxenergy.annotate(gpt2_small, (), example_kwargs=kwargs, mode="training", optimizer=optimizer,
                            method="export")
    assert _sums(rec) == _sums(ref)  # forward, backward and optimizer totals
    assert _sums(rec, "forward", by_module=True) == _sums(ref, "forward", by_module=True)
    bwd_rec, bwd_ref = _sums(rec, "backward", by_module=True), _sums(ref, "backward", by_module=True)
    linear = [k for k in bwd_ref if k[0][0].endswith(("c_attn", "c_fc", "lm_head")) and k[1] == "flops"]
    assert linear and all(bwd_rec.get(k) == bwd_ref[k] for k in linear)  # matmul grads land on their layer
    # activations kept for backward: export splits training-mode dropout (bernoulli_, div_, mul) and
    # layer_norm's saved mean/rstd into nodes of their own, record keeps one node per call: within 1%
    assert rec.working_sets.backward_bytes == pytest.approx(ref.working_sets.backward_bytes, rel=0.01)


def test_training_backward_modules_plain():
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    rec, ref = _both(m, torch.randn(2, 8), mode="training", reference="symbolic_trace")
    assert _sums(rec, by_module=True) == _sums(ref, by_module=True)
    assert {r.module_path for r in rec.rows if r.phase == "backward" and r.macs} == {"0", "2"}


def test_recorded_graph_is_a_record_not_a_program():
    r = fxenergy.annotate(nn.Linear(4, 2), torch.randn(1, 4), method="record")
    gm = r.graph_module
    assert [n.op for n in gm.graph.nodes][-1] == "output"
    with pytest.raises(RuntimeError, match="record of one run"):
        gm(torch.randn(1, 4))



@pytest.mark.slow
@pytest.mark.parametrize("name", TV_TRAINING)
def test_torchvision_training_matches_joint_graph(name):
    """``auto`` captures training with ``record`` (issue 12): on torchvision classifiers it must cost the
    same as the symbolic_trace + make_fx joint-graph path it replaced (2-4x slower). FLOPs agree exactly
    per (module, phase); bytes too, but for backward bytes (within 5%, see below). The nodes differ: one per top-level torch call (record)
    against one per ATen op (joint graph), so the activations kept for backward (the sum of forward node
    outputs) are fewer in record where one call hides intermediates (vit_b_16's multi-head attention:
    25% fewer bytes, resnet18 2%); the per-node physical, roofline and hef figures stay within 2%."""
    from fxenergy.analysis import analyse, predict
    from fxenergy.models import build_model
    from fxenergy.resolve import resolve

    b = build_model(name, batch_size=2, image_size=224)
    rec, ref = (analyse(b.model, b.args, example_kwargs=b.kwargs, mode="training", method=m)
                for m in ("record", "symbolic_trace"))
    assert rec.info["capture_method"] == "record" and ref.info["capture_method"] == "symbolic_trace"
    for phase in ("forward", "optimizer"):
        assert _sums(rec, phase, by_module=True) == _sums(ref, phase, by_module=True)
    bwd_rec, bwd_ref = _sums(rec, "backward", by_module=True), _sums(ref, "backward", by_module=True)
    flops = {k: v for k, v in bwd_ref.items() if k[1] in ("flops", "elementwise_flops")}
    assert flops and flops == {k: v for k, v in bwd_rec.items() if k[1] in ("flops", "elementwise_flops")}
    # backward bytes: convnext_tiny's stochastic depth is one call in record, decomposed in the joint graph
    # (+4% bytes in record); exact on resnet18 and vit_b_16
    for k, v in _sums(ref, "backward").items():
        assert _sums(rec, "backward")[k] == pytest.approx(v, rel=0.05)
    assert 0.7 * ref.working_sets.backward_bytes < rec.working_sets.backward_bytes <= ref.working_sets.backward_bytes
    for hw, backend, threads in (("xeon-gold-5120", "physical", 2), ("xeon-gold-5120", "roofline", 2),
                                 ("a30", "hef", None)):
        p_rec, p_ref = (predict(r, resolve(hw, backend, threads=threads)) for r in (rec, ref))
        assert p_rec.energy_j == pytest.approx(p_ref.energy_j, rel=0.02)
        assert p_rec.total_duration_s == pytest.approx(p_ref.total_duration_s, rel=0.02)
