"""transformers models built on the meta device from the config JSON files bundled in ``configs/``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .._lean import hidden_packages
from ..errors import UserInputError
from .catalog import CONFIG_DIR, bundled

__all__ = ["CONFIG_DIR", "bundled", "build", "without_unused_extras", "UNUSED_EXTRAS"]

# Packages transformers imports eagerly when installed, which no bundled model's forward uses: scipy
# (``scipy.optimize.linear_sum_assignment`` for DETR-style matching losses, pulled in by
# ``modeling_utils`` -> ``loss_utils``) and torchvision (image processors, via ``image_transforms``).
# Together about 0.6 s of a cold ``fxenergy report gpt2`` (``python -X importtime``).
UNUSED_EXTRAS = ("scipy", "torchvision")


@contextmanager
def without_unused_extras() -> Iterator[tuple[str, ...]]:
    """While the body runs, transformers sees :data:`UNUSED_EXTRAS` as not installed (yields the ones hidden).

    For the CLI's one-shot ``report`` process only: a package already imported is left alone; the
    others get ``sys.modules[name] = None`` (Python's documented way to make an import fail, so
    ``importlib.util.find_spec``, which transformers' availability checks use, answers None), and
    transformers' cached availability checks are cleared on entry and on exit. Afterwards the
    packages import normally again, but transformers modules first imported inside the body keep
    the optional parts they skipped (e.g. DETR's Hungarian matcher): that is why ``build_model``
    does this only when asked (``lean_imports=True``) and the Python API never does.
    ``tests/test_cold_start.py`` checks, in two fresh processes, that five bundled transformers models
    build and analyse to the same totals with and without it.
    """
    try:
        from transformers.utils import import_utils
    except Exception:  # noqa: BLE001 - no transformers, or a layout this does not know: hide nothing
        yield ()
        return
    caches = [f for f in vars(import_utils).values() if callable(getattr(f, "cache_clear", None))]
    with hidden_packages(*UNUSED_EXTRAS) as hidden:
        for f in caches:
            f.cache_clear()
        try:
            yield hidden
        finally:
            for f in caches:
                f.cache_clear()


def build(name: str, *, seq_len: int, image_size: int | None, dtype: torch.dtype,
          lean_imports: bool = False) -> tuple[nn.Module, int | None]:
    """Build bundled model ``name`` on meta with SDPA attention (or the config's ``attn_implementation``, for
    an architecture transformers gives no SDPA path) and no KV cache.

    Returns the model (eval mode, parameters in ``dtype``) and, for vision models, the input size in
    pixels. Raises UserInputError when ``seq_len`` exceeds the model's position limit or ``image_size``
    does not fit the patch size. ``lean_imports``: build inside :func:`without_unused_extras`.
    """
    if lean_imports:
        with without_unused_extras():
            return build(name, seq_len=seq_len, image_size=image_size, dtype=dtype)
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
        model = getattr(transformers, meta["class"])._from_config(
            config, attn_implementation=meta.get("attn_implementation", "sdpa"), dtype=dtype)
    return model.eval(), getattr(config, "image_size", None)
