from __future__ import annotations

import pytest
import torch
import transformers

import fxenergy


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


def macs_by_type(result: fxenergy.Result) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in result.rows:
        out[r.module_type] = out.get(r.module_type, 0) + r.macs
    return out


def tiny_llama() -> transformers.PreTrainedModel:
    cfg = transformers.LlamaConfig(
        hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000, max_position_embeddings=256, use_cache=False,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()


def flop_counter(model, args, kwargs, training=False) -> int:
    """torch's FlopCounterMode total over one forward (and backward of the summed outputs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        out = model(*args, **kwargs)
        if training:
            leaves = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor) and o.is_floating_point()]
            sum(o.sum() for o in leaves).backward()
    return fc.get_total_flops()


def exported(model, args, kwargs):
    """Eager transformers decoders call .item() on meta tensors; the exported program has no Python
    control flow and dispatches the same ATen ops, so FlopCounterMode runs on it instead."""
    return torch.export.export(model, args, kwargs=kwargs, strict=False).module()


@pytest.fixture(scope="session")
def gpt2_small() -> transformers.PreTrainedModel:
    cfg = transformers.GPT2Config(n_layer=2, use_cache=False)
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").eval()


class ScriptedMeter:
    """A meter of fxenergy.measure's interface giving scripted per-window joules; an exception
    instance in the script is raised by end() (a failed window)."""

    name, domains, measures_energy = "fake", ("pkg",), True

    def __init__(self, script):
        self.script = list(script)

    def begin(self):
        pass

    def poll(self):
        pass

    def end(self):
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return {"pkg": item}

    def close(self):
        pass
