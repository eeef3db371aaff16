"""transformers models built on the meta device from the config JSON files bundled in ``configs/``."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserInputError
from .catalog import CONFIG_DIR, bundled

__all__ = ["CONFIG_DIR", "bundled", "build"]


def build(name: str, *, seq_len: int, image_size: int | None, dtype: torch.dtype) -> tuple[nn.Module, int | None]:
    """Build bundled model ``name`` on meta with SDPA attention and no KV cache.

    Returns the model (eval mode, parameters in ``dtype``) and, for vision models, the input size in
    pixels. Raises UserInputError when ``seq_len`` exceeds the model's position limit or ``image_size``
    does not fit the patch size.
    """
    import transformers

    fields = dict(bundled()[name])
    meta = fields.pop("_fxenergy")
    if image_size is not None and "image_size" in fields:
        if image_size % fields["patch_size"]:
            raise UserInputError(
                f"image_size={image_size} is not a multiple of {name}'s patch size {fields['patch_size']}"
            )
        fields["image_size"] = image_size
    config = transformers.AutoConfig.for_model(fields.pop("model_type"), **fields)
    if meta["task"] != "image-classification":
        limit = meta.get("max_seq_len") or getattr(config, "max_position_embeddings", None)
        if limit is not None and seq_len > limit:
            raise UserInputError(
                f"seq_len={seq_len} exceeds {name}'s maximum of {limit} positions; use a seq_len of at most {limit}"
            )
    if hasattr(config, "use_cache"):
        config.use_cache = False
    with torch.device("meta"):
        model = getattr(transformers, meta["class"])._from_config(config, attn_implementation="sdpa", dtype=dtype)
    return model.eval(), getattr(config, "image_size", None)
