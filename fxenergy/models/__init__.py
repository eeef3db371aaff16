"""Named model builders: torchvision classifiers, bundled transformers configs and ``file.py:factory``.

Every named model is built on the meta device: no weights are allocated, initialised or downloaded, so
even Llama-2-70B builds in well under a second. Shapes are in elements (batch, tokens, pixels).
Listing (:func:`list_models`) needs no torch; :func:`build_model` loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import ModelInfo, list_models

if TYPE_CHECKING:
    from ._meta import meta_init
    from .build import BuiltModel, build_model

__all__ = ["ModelInfo", "BuiltModel", "list_models", "build_model", "meta_init"]

_LAZY = {"BuiltModel": "build", "build_model": "build", "meta_init": "_meta"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fxenergy.models' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
