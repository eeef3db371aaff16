"""User models given as ``path/to/file.py:factory`` or ``package.module:callable``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..errors import UserInputError

__all__ = ["is_factory_spec", "is_callable_spec", "load", "load_callable"]

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def is_factory_spec(name: str) -> bool:
    """True for names of the form ``path/to/file.py:factory``."""
    return ".py:" in name


def is_callable_spec(name: str) -> bool:
    """True for names of the form ``package.module:callable`` (an importable module, not a file)."""
    return not is_factory_spec(name) and bool(_DOTTED.match(name))


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _import(path: Path, spec_text: str) -> Any:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    mod_name = f"fxenergy_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserInputError(f"cannot import {path} from {spec_text!r}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # lets dataclasses/pickle inside the file resolve their module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise UserInputError(f"importing {path} failed with {_one_line(e)}") from e
    return module


def load(spec_text: str) -> tuple[nn.Module, tuple | None, dict]:
    """Import the file, call the factory and return ``(module, args or None, kwargs)``.

    The factory takes no arguments and returns a module, ``(module, args)`` or ``(module, args, kwargs)``;
    ``args`` None means the caller should make a default image input.
    """
    file_part, _, attr = spec_text.rpartition(":")
    path = Path(file_part).expanduser().resolve()
    if not attr.isidentifier():
        raise UserInputError(f"{spec_text!r}: {attr!r} is not a factory function name; use path/to/file.py:factory")
    if not path.is_file():
        raise UserInputError(f"model file {str(path)!r} not found; check the path in {spec_text!r}")
    factory = getattr(_import(path, spec_text), attr, None)
    if not callable(factory):
        what = "is not callable" if factory is not None else "is not defined"
        raise UserInputError(f"{attr!r} {what} in {path}; define a function {attr}() that returns an nn.Module")
    return _call(factory, f"{path.name}:{attr}")


def load_callable(spec_text: str) -> tuple[nn.Module, tuple | None, dict]:
    """Import ``package.module``, call ``callable`` and return ``(module, args or None, kwargs)``.

    Same return conventions as :func:`load`; the module is found on ``sys.path``.
    """
    mod_name, _, attr = spec_text.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise UserInputError(f"cannot import {mod_name!r} from {spec_text!r}: {_one_line(e)} "
                             "(is it installed, or on sys.path?)") from e
    except Exception as e:
        raise UserInputError(f"importing {mod_name} failed with {_one_line(e)}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        what = "is not callable" if factory is not None else "is not defined"
        raise UserInputError(f"{attr!r} {what} in module {mod_name}; define a function {attr}() that returns an nn.Module")
    return _call(factory, spec_text)


def _call(factory: Any, where: str) -> tuple[nn.Module, tuple | None, dict]:
    """Call a zero-argument factory and normalise its return value to ``(module, args, kwargs)``."""
    try:
        result = factory()
    except Exception as e:
        raise UserInputError(f"{where}() raised {_one_line(e)}") from e

    items = result if isinstance(result, (tuple, list)) else (result,)
    module, args, kwargs = (*items, None, None)[:3] if 1 <= len(items) <= 3 else (None, None, None)
    if isinstance(args, Tensor):
        args = (args,)
    if isinstance(args, list):
        args = tuple(args)
    containers_ok = isinstance(args, (tuple, type(None))) and isinstance(kwargs, (dict, type(None)))
    if not (isinstance(module, nn.Module) and containers_ok):
        raise UserInputError(
            f"{where}() returned {type(result).__name__}; expected an nn.Module, "
            "(module, args) or (module, args, kwargs) with args a tuple and kwargs a dict"
        )
    return module, args, kwargs or {}
