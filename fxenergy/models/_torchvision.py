"""torchvision ImageNet classifiers, built on the meta device.

Each model gets the architecture and input size its DEFAULT pretrained weights use (e.g. inception_v3
299x299, efficientnet_b7 600x600, vit_h_14 518x518), without downloading or loading those weights.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
import torchvision.models as tvm
from torch import nn

from ..errors import UserInputError
from ._meta import meta_init

__all__ = ["names", "default_size", "describe", "build", "catalogue_entries"]

# Constructor arguments the builders set themselves when loading DEFAULT weights (minus the download).
# init_weights=False also skips GoogLeNet/Inception's FutureWarning about scipy-based initialisation.
_ARCH_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"transform_input": True, "aux_logits": False, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}
# Architectures whose positional embeddings / partitions fix the input size: (name prefix, kwarg, value).
_FIXED_SIZE_KWARG: tuple[tuple[str, str, Any], ...] = (
    ("vit_", "image_size", lambda s: s),
    ("maxvit_", "input_size", lambda s: (s, s)),
)


@cache
def names() -> tuple[str, ...]:
    """Every torchvision classification model name, sorted."""
    return tuple(sorted(tvm.list_models(module=tvm)))


def _weights(name: str) -> tvm.WeightsEnum:
    return tvm.get_model_weights(name).DEFAULT  # type: ignore[attr-defined]


@cache
def default_size(name: str) -> int:
    """Input height = width in pixels that the model's DEFAULT weights are evaluated at."""
    return int(_weights(name).transforms.keywords["crop_size"])


def describe(name: str) -> str:
    """One line for ``list_models``."""
    s, n = default_size(name), _weights(name).meta["num_params"]
    return f"ImageNet-1k classifier, {n / 1e6:.1f}M params, {s}x{s} input"


def catalogue_entries() -> dict[str, dict[str, int]]:
    """What ``catalogue-torchvision.json`` holds, computed from the installed torchvision."""
    return {n: {"default_size": default_size(n), "num_params": int(_weights(n).meta["num_params"])} for n in names()}


def _fixed_size_kwarg(name: str, size: int) -> dict[str, Any]:
    return {kw: fn(size) for prefix, kw, fn in _FIXED_SIZE_KWARG if name.startswith(prefix)}


def build(name: str, image_size: int | None, dtype: torch.dtype) -> tuple[nn.Module, int]:
    """Build ``name`` on meta in ``dtype``; return the model and the input size (pixels) to feed it."""
    size = image_size or default_size(name)
    kwargs = {**_ARCH_KWARGS.get(name, {}), **_fixed_size_kwarg(name, size)}
    # The weights' ``min_size`` is where their published accuracy holds, not an architectural limit
    # (swin_v2_t runs at 224 although its weights say 256): refuse only what fails to build or trace.
    try:
        with meta_init():
            model = tvm.get_model(name, weights=None, **kwargs)
    except Exception as e:
        if image_size is None:
            raise
        msg = " ".join(str(e).split())
        raise UserInputError(
            f"{name} cannot be built for image_size={size} ({type(e).__name__}: {msg}); "
            f"its default is {default_size(name)}"
        ) from e
    return model.to(dtype).eval(), size
