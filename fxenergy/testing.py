"""Reference counts and small models shared by the test suite and the benchmark scripts.

Importable (``from fxenergy.testing import flop_counter``) so that ``benchmarks/`` need no
``sys.path`` into ``tests/``. Nothing here is used by fxenergy's own passes: these are the yardsticks
its counts are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["flop_counter", "exported", "graph_signature", "tiny_llama"]


def flop_counter(model: Any, args: Sequence[Any], kwargs: Mapping[str, Any], training: bool = False) -> int:
    """torch's FlopCounterMode total over one forward (and backward of the summed outputs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        out = model(*args, **kwargs)
        if training:
            leaves = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor) and o.is_floating_point()]
            torch.stack([o.sum() for o in leaves]).sum().backward()
    return int(fc.get_total_flops())


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
