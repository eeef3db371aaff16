"""Reference counts and small models shared by the test suite and the benchmark scripts.

Importable (``from fxenergy.testing import flop_counter``) so that ``benchmarks/`` need no
``sys.path`` into ``tests/``. Nothing here is used by fxenergy's own passes: these are the yardsticks
its counts are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["flop_counter", "exported", "graph_signature", "priced_nodes", "tiny_bert", "tiny_gpt2", "tiny_llama", "tiny_t5"]


def flop_counter(model: Any, args: Sequence[Any], kwargs: Mapping[str, Any], training: bool = False) -> int:
    """torch's FlopCounterMode total over one forward (and backward of the summed outputs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        out = model(*args, **kwargs)
        if training:
            leaves = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor) and o.is_floating_point()]
            torch.stack([o.sum() for o in leaves]).sum().backward()
    return int(fc.get_total_flops())


def priced_nodes(module: torch.nn.Module, shape: Sequence[int]) -> list[tuple[Any, Any]]:
    """``(trace, cost)`` records of every node a duration model prices when ``module`` runs on one meta tensor of
    ``shape``: nodes with a cost that is not free, outside the graph's inputs (in graph order)."""
    from fxenergy.analysis import analyse
    from fxenergy.records import COST, TRACE, get_record

    an = analyse(module, (torch.empty(*shape, device="meta"),))
    out = []
    for n in an.graph_module.graph.nodes:
        trace, cost = get_record(n, TRACE), get_record(n, COST)
        if cost is not None and not cost.free and trace.phase != "input":
            out.append((trace, cost))
    return out


def exported(model: torch.nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> torch.nn.Module:
    """Eager transformers decoders call .item() on meta tensors; the exported program has no Python
    control flow and dispatches the same ATen ops, so FlopCounterMode runs on it instead."""
    return torch.export.export(model, args, kwargs=dict(kwargs), strict=False).module()


def tiny_llama() -> torch.nn.Module:
    """A two-layer Llama (hidden 256, GQA 4/2 heads, vocabulary 1000) on the meta device, in eval mode."""
    import transformers

    cfg = transformers.LlamaConfig(
        hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000, max_position_embeddings=256, use_cache=False,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()


def tiny_gpt2(layers: int = 3) -> torch.nn.Module:
    """A GPT-2 (hidden 64, 4 heads, vocabulary 500) of ``layers`` blocks on the meta device, in eval mode."""
    import transformers

    cfg = transformers.GPT2Config(n_layer=layers, n_embd=64, n_head=4, vocab_size=500, bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel(cfg).eval()


def tiny_bert(layers: int) -> torch.nn.Module:
    """A masked-LM BERT (hidden 64, 4 heads, vocabulary 500) of ``layers`` layers on meta, in eval mode."""
    import transformers

    cfg = transformers.BertConfig(hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                                  intermediate_size=128, vocab_size=500)
    with torch.device("meta"):
        return transformers.BertForMaskedLM(cfg).eval()


def tiny_t5(layers: int) -> torch.nn.Module:
    """A T5 (d_model 64, 4 heads, vocabulary 500) of ``layers`` encoder and decoder layers on meta, in eval mode."""
    import transformers

    cfg = transformers.T5Config(d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=layers, vocab_size=500)
    with torch.device("meta"):
        return transformers.T5ForConditionalGeneration(cfg).eval()


def graph_signature(gm: torch.fx.GraphModule) -> list[tuple]:
    """Every node as (op, target, (module path, module type, phase, calls, outputs), args, kwargs), with
    argument nodes as their positions: two captures are the same graph iff their signatures are equal."""
    from fxenergy.records import META_KEY, TRACE

    pos = {n: i for i, n in enumerate(gm.graph.nodes)}

    def arg(a: Any) -> Any:
        return ("node", pos[a]) if isinstance(a, torch.fx.Node) else a

    out = []
    for n in gm.graph.nodes:
        t = n.meta.get(META_KEY, {}).get(TRACE)
        rec = None if t is None else (t.module_path, t.module_type, t.phase, t.calls, t.outputs)
        target = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
        out.append((n.op, target, rec, torch.fx.node.map_aggregate(n.args, arg),
                    torch.fx.node.map_aggregate(n.kwargs, arg)))
    return out
