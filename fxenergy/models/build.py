"""Building named models (torch side): ``build_model`` and its example inputs.

The catalogue of names lives in :mod:`fxenergy.models.catalog` (no torch), so listing models is fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from . import _factory
from .catalog import ModelInfo, lookup

__all__ = ["BuiltModel", "build_model"]

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_META = torch.device("meta")

@dataclass
class BuiltModel:
    """A model ready for capture plus example inputs for its forward.

    For named models, ``model`` and every tensor in ``args``/``kwargs`` live on the meta device; a
    ``file.py:factory`` model keeps the device and real weights its factory gave it (floating ones are
    cast to the requested dtype, a no-op when they already have it); its default image input is on meta.
    """

    name: str
    model: nn.Module
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    info: ModelInfo | None = None


def _check_positive(**values: int | None) -> None:
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserInputError(f"{key} must be a positive integer, got {value!r}")


def _meta_empty(*shape: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=_META)


def _image(batch_size: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    return _meta_empty(batch_size, 3, size, size, dtype=dtype)


def _cast(obj: Any, dtype: torch.dtype) -> Any:
    """Floating tensors in nested tuples/lists/dicts converted to ``dtype``; everything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


def build_model(
    name: str,
    *,
    batch_size: int = 1,
    seq_len: int = 128,
    image_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    lean_imports: bool = False,
) -> BuiltModel:
    """Build model ``name`` in eval mode with example inputs.

    ``name`` is a name from :func:`list_models` (case-insensitive), ``path/to/file.py:factory`` or
    ``package.module:callable`` (imported from ``sys.path``).
    Text models get ``input_ids`` of shape (batch_size, seq_len) tokens (plus ``decoder_input_ids`` for
    seq2seq); vision models get one (batch_size, 3, H, W) image, H = W = ``image_size`` pixels or the
    model's default. ``dtype`` is the floating dtype of parameters, buffers and image inputs.
    Raises UserInputError for unknown names, bad files/factories and out-of-range sizes.
    ``lean_imports=True`` (the CLI's ``report`` when its process is the command; never from Python code) builds a bundled
    transformers model while transformers sees scipy and torchvision as absent, which it would
    otherwise import without using them (:func:`fxenergy.models._hf.without_unused_extras`).
    """
    _check_positive(batch_size=batch_size, seq_len=seq_len, image_size=image_size)
    if dtype not in _DTYPES:
        raise UserInputError(f"dtype must be one of {', '.join(map(str, _DTYPES))}, got {dtype!r}")

    if _factory.is_factory_spec(name) or _factory.is_callable_spec(name):
        load = _factory.load if _factory.is_factory_spec(name) else _factory.load_callable
        model, args, kwargs = load(name)
        model = model.eval().to(dtype)
        if args is None:
            args = (_image(batch_size, image_size or 224, dtype),)
        return BuiltModel(name, model, _cast(args, dtype), _cast(kwargs, dtype), None)

    info = lookup(name)
    size: int | None
    if info.family == "torchvision":
        from . import _torchvision  # imported only for torchvision models (GPT-2 never loads torchvision)

        model, size = _torchvision.build(info.name, image_size, dtype)
    else:
        from . import _hf  # imported only for transformers models

        model, size = _hf.build(info.name, seq_len=seq_len, image_size=image_size, dtype=dtype,
                                lean_imports=lean_imports)
    if info.task == "image-classification":
        assert size is not None  # a vision model always has its input size
        return BuiltModel(info.name, model, (_image(batch_size, size, dtype),), {}, info)
    kwargs = {"input_ids": _meta_empty(batch_size, seq_len, dtype=torch.long)}
    if info.task == "seq2seq":
        kwargs["decoder_input_ids"] = _meta_empty(batch_size, seq_len, dtype=torch.long)
    return BuiltModel(info.name, model, (), kwargs, info)
