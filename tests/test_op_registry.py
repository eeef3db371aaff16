"""The op registry (fxenergy.passes.ops): one table, every row complete, read by every pass and backend;
and the seed-000 ReLU rule reconciled against Table 3 and against the released data."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import meta
from test_costs import Fn
from torch import nn

import fxenergy
from fxenergy.analysis import analyse
from fxenergy.passes import ops
from fxenergy.passes.families import FAMILIES
from fxenergy.predictors.layerwise import FEATURES, layer_of_node, seed000_macs
from fxenergy.records import TRACE, get_record

GETZNER = Path(__file__).resolve().parents[2] / "shared" / "data" / "cpu-layers-getzner"


def test_every_row_has_all_four_fields():
    assert len(ops.OPS) > 250
    for name, e in ops.OPS.items():
        assert e.name == name
        assert e.cost is None or callable(e.cost), name  # a formula, or deliberately free
        assert callable(e.bytes_rule), name
        assert e.family in FAMILIES, name
        assert e.layer_type is None or e.layer_type in FEATURES, name
        if e.cost is None:  # a free op moves nothing and is no layer
            assert e.bytes_rule.__name__ == "no_bytes" and e.layer_type is None, name


def test_every_family_and_layer_type_has_ops():
    families = {e.family for e in ops.OPS.values()}
    # the two attention families are fitted on seed 004's data only; no ATen op maps to them
    assert set(FAMILIES) - families == {"attention_score", "attention_output"}
    assert {e.layer_type for e in ops.OPS.values()} - {None} == set(FEATURES)


def test_the_passes_read_the_table():
    """Changing nothing but the table would change what the passes see: they share its rows."""
    addmm = torch.ops.aten.addmm.default
    assert ops.op_info(addmm) is ops.OPS["addmm"] is ops.op_info(torch.ops.aten.addmm)
    assert ops.lookup(addmm) == (True, ops.OPS["addmm"].cost)
    assert ops.lookup(torch.ops.aten.view.default) == (True, None)
    assert ops.lookup(torch.ops.aten._fft_r2c.default) == (False, None)  # unmodeled: listed, never zero
    assert ops.family_of("addmm.default") == "matmul" and ops.family_of("_fft_r2c") == "elementwise"
    assert ops.layer_type_of("convolution") == "Conv2d" and ops.layer_type_of("add") is None


def test_layerwise_layer_types_come_from_the_table():
    gm = analyse(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Tanh()), meta(4, 8)).graph_module
    layers = [layer_of_node(n) for n in gm.graph.nodes if get_record(n, TRACE) is not None]
    assert [x[0] for x in layers if x] == ["Linear", "ReLU", "Tanh"]


def test_matvec_is_counted():
    m = fxenergy.annotate(Fn(lambda a, v: torch.mv(a, v)), (meta(5, 7), meta(7)))
    assert m.totals.macs == 35 and not m.unmodeled


def _rows(name: str, n: int = 25) -> list[dict[str, str]]:
    with open(GETZNER / name) as fh:
        return [r for _, r in zip(range(n), csv.DictReader(fh))]


@pytest.mark.skipif(not GETZNER.exists(), reason="../shared/data (cpu-layers-getzner) not present")
def test_seed000_relu_rule_against_table3_and_the_data():
    """Table 3 counts ReLU as numel/2 (the cost pass under seed000); the data's ``macs`` column, which
    the layer-wise regressors are fitted on, is numel (one per element): each side keeps its own."""
    with open(GETZNER / "relu.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 988
    for r in rows:
        b, n = int(r["batch_size"]), int(r["input_size"])
        assert float(r["macs"]) == b * n == seed000_macs("ReLU", {"batch_size": b, "input_size": n})
    for r in rows[:5]:
        b, n = int(r["batch_size"]), int(r["input_size"])
        table3 = fxenergy.annotate(nn.ReLU(), meta(b, n), convention="seed000").totals.macs
        assert table3 == (b * n) // 2


@pytest.mark.skipif(not GETZNER.exists(), reason="../shared/data (cpu-layers-getzner) not present")
def test_seed000_maxpool_rule_matches_table3_and_the_data():
    checked = 0
    for r in _rows("maxpool2d.csv", 12):
        b, s, k, c, st, p = (int(r[x]) for x in ("batch_size", "image_size", "kernel_size", "in_channels", "stride", "padding"))
        if p > k // 2:  # torch refuses padding over half the kernel
            continue
        got = fxenergy.annotate(nn.MaxPool2d(k, st, p), meta(b, c, s, s), convention="seed000").totals.macs
        out = math.floor((s + 2 * p - k) / st) + 1
        assert got == k * k * out * out * c * b // 2 == int(float(r["macs"]))
        checked += 1
    assert checked >= 3


def test_mixture_of_experts_is_priced_not_unmodeled():
    """A Mixtral block routes each token to top-k experts through ``aten._grouped_mm`` (transformers 5): the
    routed rows cost top_k x (3 projections) MACs per token, whatever the (data-dependent) split; the router's
    topk / sort / histc are priced too, so no op is left unmodeled and the experts are matmul-family work."""
    import transformers

    h, inter, experts, top_k, layers, vocab, seq = 64, 96, 4, 2, 2, 500, 16
    cfg = transformers.MixtralConfig(hidden_size=h, intermediate_size=inter, num_hidden_layers=layers,
                                     num_attention_heads=4, num_key_value_heads=2, num_local_experts=experts,
                                     num_experts_per_tok=top_k, vocab_size=vocab, use_cache=False)
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(cfg).eval()
    r = fxenergy.annotate(model, (), example_kwargs={"input_ids": torch.zeros(1, seq, dtype=torch.long, device="meta")})
    assert r.unmodeled == []
    kv = h // 4 * 2
    per_token = layers * (h * (h + 2 * kv + h) + top_k * 3 * h * inter + h * experts) + h * vocab
    scores = layers * 2 * seq * seq * h  # Q.K^T and A.V
    assert r.totals.macs == per_token * seq + scores
    grouped = [row for row in r.rows if row.op == "_grouped_mm"]
    assert len(grouped) == 2 * layers and {ops.family_of(row.op) for row in grouped} == {"matmul"}
    assert sum(row.macs for row in grouped) == layers * top_k * 3 * h * inter * seq


def test_sort_counts_log2_passes():
    from fxenergy.passes.formulas import sort
    from fxenergy.records import OpCall, TensorSpec

    x = TensorSpec((4, 1000), torch.float32)
    call = OpCall(torch.ops.aten.sort.default, (x, -1), {}, (x, x))
    assert sort(call, "default").elementwise_flops == 4 * 1000 * 10  # ceil(log2 1000) = 10
