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


@pytest.fixture(scope="session")
def gpt2_small() -> transformers.PreTrainedModel:
    cfg = transformers.GPT2Config(n_layer=2, use_cache=False)
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").eval()
