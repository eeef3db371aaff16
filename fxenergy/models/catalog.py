"""The catalogue of named models, readable without torch (``fxenergy models`` starts in a blink).

torchvision classifiers come from ``catalogue-torchvision.json``, generated from torchvision itself by
:func:`fxenergy.models._torchvision.catalogue_entries` (a test asserts the file matches the installed
torchvision, so it cannot go stale silently); transformers models from the bundled ``configs/*.json``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import UserInputError

__all__ = ["ModelInfo", "list_models", "lookup", "bundled", "CONFIG_DIR", "TORCHVISION_CATALOGUE"]

CONFIG_DIR = Path(__file__).with_name("configs")
TORCHVISION_CATALOGUE = Path(__file__).with_name("catalogue-torchvision.json")


@dataclass(frozen=True)
class ModelInfo:
    """A model name ``build_model`` accepts."""

    name: str  #: e.g. "gpt2", "resnet50"
    family: str  #: "torchvision" | "transformers"
    task: str  #: "image-classification" | "causal-lm" | "encoder" | "seq2seq"
    description: str  #: one short line, e.g. "GPT-2 124M (LM head)"


@cache
def bundled() -> dict[str, dict[str, Any]]:
    """Name -> parsed JSON (``model_type``, config fields and the ``_fxenergy`` metadata object)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(CONFIG_DIR.glob("*.json"))}


@cache
def torchvision_entries() -> dict[str, dict[str, Any]]:
    """``{name: {"default_size", "num_params"}}`` of every torchvision classifier (from the JSON file)."""
    return json.loads(TORCHVISION_CATALOGUE.read_text())["models"]


def describe_torchvision(entry: dict[str, Any]) -> str:
    s, n = entry["default_size"], entry["num_params"]
    return f"ImageNet-1k classifier, {n / 1e6:.1f}M params, {s}x{s} input"


@cache
def _registry() -> dict[str, ModelInfo]:
    infos = [ModelInfo(n, "torchvision", "image-classification", describe_torchvision(e))
             for n, e in torchvision_entries().items()]
    infos += [ModelInfo(n, "transformers", c["_fxenergy"]["task"], c["_fxenergy"]["description"])
              for n, c in bundled().items()]
    return {i.name: i for i in sorted(infos, key=lambda i: i.name)}


def list_models() -> list[ModelInfo]:
    """Every named model (all torchvision classifiers and the bundled transformers configs), sorted by name.

    >>> next(i for i in list_models() if i.name == "gpt2").task
    'causal-lm'
    """
    return list(_registry().values())


def lookup(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name`` (case-insensitive), or a one-line error with close names."""
    registry = _registry()
    folded = {n.lower(): i for n, i in registry.items()}
    info = registry.get(name) or folded.get(name.strip().lower())
    if info is not None:
        return info
    if name.endswith(".py"):
        raise UserInputError(f"{name!r} names a file but no factory; use {name}:factory_function")
    close = difflib.get_close_matches(name.lower(), list(folded), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(folded[c].name for c in close)}? " if close else ""
    raise UserInputError(
        f"unknown model {name!r}; {hint}`fxenergy models` lists the names, or pass path/to/file.py:factory"
    )
