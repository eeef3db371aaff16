"""The transformers architectures the capture test builds from their DEFAULT configs, and their inputs.

Shared by tests/test_transformers_archs.py and benchmarks (no sys.path tricks: this is a plain module
of the tests package directory, imported by the test through the rootdir on sys.path).
"""

from __future__ import annotations

SEQ = 8  # tokens: short, so that the default (full-size) configs trace quickly on meta

# (architecture, model class, config class, task): task picks the example inputs
ARCHS = (
    ("gpt2", "GPT2LMHeadModel", "GPT2Config", "causal-lm"),
    ("gptj", "GPTJForCausalLM", "GPTJConfig", "causal-lm"),
    ("gpt_neox", "GPTNeoXForCausalLM", "GPTNeoXConfig", "causal-lm"),
    ("llama", "LlamaForCausalLM", "LlamaConfig", "causal-lm"),
    ("mistral", "MistralForCausalLM", "MistralConfig", "causal-lm"),
    ("mixtral", "MixtralForCausalLM", "MixtralConfig", "causal-lm"),
    ("qwen2", "Qwen2ForCausalLM", "Qwen2Config", "causal-lm"),
    ("gemma", "GemmaForCausalLM", "GemmaConfig", "causal-lm"),
    ("phi", "PhiForCausalLM", "PhiConfig", "causal-lm"),
    ("opt", "OPTForCausalLM", "OPTConfig", "causal-lm"),
    ("falcon", "FalconForCausalLM", "FalconConfig", "causal-lm"),
    ("bert", "BertForMaskedLM", "BertConfig", "masked-lm"),
    ("roberta", "RobertaForMaskedLM", "RobertaConfig", "masked-lm"),
    ("deberta-v2", "DebertaV2ForMaskedLM", "DebertaV2Config", "masked-lm"),
    ("t5", "T5ForConditionalGeneration", "T5Config", "seq2seq"),
    ("bart", "BartForConditionalGeneration", "BartConfig", "seq2seq"),
    ("whisper", "WhisperForConditionalGeneration", "WhisperConfig", "audio-seq2seq"),
    ("vit", "ViTForImageClassification", "ViTConfig", "vision"),
    ("clip", "CLIPModel", "CLIPConfig", "vision-text"),
    ("swin", "SwinForImageClassification", "SwinConfig", "vision"),
)


def build(model_cls: str, config_cls: str, task: str):
    """``(model on meta, example kwargs on meta)`` from the class's default config."""
    import torch
    import transformers

    config = getattr(transformers, config_cls)()
    with torch.device("meta"):
        model = getattr(transformers, model_cls)(config).eval()
    ids = torch.zeros(1, SEQ, dtype=torch.long, device="meta")
    if task in ("causal-lm", "masked-lm"):
        return model, {"input_ids": ids}
    if task == "seq2seq":
        return model, {"input_ids": ids, "decoder_input_ids": ids}
    if task == "audio-seq2seq":
        frames = 2 * config.max_source_positions  # Whisper's encoder takes exactly this many mel frames
        feats = torch.zeros(1, config.num_mel_bins, frames, device="meta")
        return model, {"input_features": feats, "decoder_input_ids": ids}
    vision = getattr(config, "vision_config", config)
    pixels = torch.zeros(1, vision.num_channels, vision.image_size, vision.image_size, device="meta")
    if task == "vision-text":
        return model, {"input_ids": ids, "pixel_values": pixels}
    return model, {"pixel_values": pixels}
