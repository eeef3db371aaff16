"""A one-shot ``fxenergy report`` process that never imports ``torch._dynamo`` for a torchvision model.

Nothing ``report`` does compiles, yet two things pull in the torch._dynamo -> torch._inductor ->
torch.distributed -> sympy/triton chain (about 1.5-2 s of a cold ``report resnet18``,
``python -X importtime``):

* torchvision's ``ops/roi_align.py`` runs ``from torch._dynamo.utils import is_compile_supported`` when
  ``import torchvision`` runs (it calls it only inside ``roi_align``'s forward);
* functions torch wraps in ``torch._disable_dynamo`` (torch.fx's ``dispatch_trace``, every
  ``TorchDispatchMode.__torch_dispatch__``, the ``torch._refs`` decompositions that meta ``normal_``
  goes through when a constructor initialises its weights) run ``import torch._dynamo`` on their
  first call, to build ``torch._dynamo.disable(fn)`` and cache it as ``fn.__dynamo_disable``.

While torch._dynamo is not imported, ``torch._dynamo.disable(fn)`` called outside a compile is a plain
call of ``fn``: its wrapper only clears the frame-evaluation callback (which only torch._dynamo sets),
applies a compile stance (set through torch._dynamo) and annotates the graph when
``torch.compiler.is_exporting()`` (set by torch.export, which imports torch._dynamo). So, only in a
process that IS the command (``cli.main()`` with no argv) and only while the report builds and analyses:

* :func:`import_torchvision` imports torchvision while ``torch._dynamo`` and ``torch._dynamo.utils``
  are placeholder modules in ``sys.modules`` whose ``is_compile_supported`` imports and calls the real
  one; the placeholders are removed as soon as the import returns; any other attribute asked of them
  during it imports the real package and answers from it, and a submodule import through them fails
  loudly. Only for the torchvision releases in :data:`CHECKED_TORCHVISION` (others: a plain import);
* :func:`dynamo_deferred` pre-sets each existing ``_disable_dynamo`` wrapper's cache to a delegate that
  calls ``fn`` directly while torch._dynamo is not imported and, once it is, builds the real
  ``torch._dynamo.disable(fn)``, stores it where torch would have and calls it; on exit every cache it
  set and that torch has not replaced is deleted, so torch caches its own on the next call. Wrappers
  made after the scan, and whatever else imports torch._dynamo (training mode's backward under make_fx
  does), import it as usual: slower, never different.

What it does not reach: transformers (5.x) imports torch._dynamo, torch.distributed.tensor, flex
attention and sympy itself while ``GPT2LMHeadModel`` & co. are imported (``torch.compiler.disable``,
``torch._dynamo.assume_constant_result`` and ``allow_in_graph`` run in its module and class bodies), so
the CLI does not enter :func:`dynamo_deferred` for transformers models (docs/validation.md, "Cold
``report`` without torch._dynamo").

``tests/test_cold_start.py`` checks, in fresh processes, that models analysed this way give the same
nodes, MACs, FLOPs, bytes, parameter counts and report totals as the normal path, that torch._dynamo
was never imported, and that torch (``torch.compile`` included) works afterwards in that process.
"""

from __future__ import annotations

import gc
import importlib
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["import_torchvision", "dynamo_deferred", "disable_wrappers"]

_DYNAMO = "torch._dynamo"
_CACHE = "__dynamo_disable"  # the attribute torch._compile._disable_dynamo caches its wrapper in


def _dynamo_loaded() -> bool:
    return _DYNAMO in sys.modules


def _real_is_compile_supported(device_type: Any) -> Any:
    """torch._dynamo.utils.is_compile_supported, imported on the first call (roi_align's forward only)."""
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(device_type)


# torchvision releases whose import was checked to ask the placeholders for nothing but
# ``is_compile_supported`` (and dunders that introspection asks of every module); other releases are
# imported plainly (correct, only slower). tests/test_cold_start.py fails when the installed one is not here.
CHECKED_TORCHVISION = ("0.29",)


def _torchvision_checked() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torchvision").startswith(tuple(v + "." for v in CHECKED_TORCHVISION))
    except PackageNotFoundError:
        return False


def import_torchvision() -> bool:
    """``import torchvision.models`` without importing torch._dynamo (see the module docstring).

    Returns whether the placeholders were used: not when torchvision or torch._dynamo is already
    imported, or when the installed torchvision is not one of :data:`CHECKED_TORCHVISION`.
    """
    if "torchvision" in sys.modules or _dynamo_loaded() or not _torchvision_checked():
        importlib.import_module("torchvision.models")
        return False
    placeholders: dict[str, types.ModuleType] = {}

    def make(name: str) -> types.ModuleType:
        def getattr_(attr: str) -> Any:
            if attr.startswith("__"):  # introspection asking every module for __file__; a submodule import
                raise AttributeError(attr)  # (__path__) fails loudly rather than load half a package
            # Anything else: drop the placeholders, import the real module and answer from it.
            _remove(placeholders)
            return getattr(importlib.import_module(name), attr)

        module = types.ModuleType(name, "placeholder while torchvision is imported (fxenergy._lean)")
        module.__getattr__ = getattr_  # type: ignore[method-assign]
        return module

    pkg, utils = make(_DYNAMO), make(_DYNAMO + ".utils")
    utils.is_compile_supported = _real_is_compile_supported  # type: ignore[attr-defined]
    placeholders.update({_DYNAMO: pkg, _DYNAMO + ".utils": utils})
    sys.modules.update(placeholders)
    try:
        importlib.import_module("torchvision.models")
    finally:
        _remove(placeholders)
    return True


def _remove(placeholders: dict[str, types.ModuleType]) -> None:
    for name, module in placeholders.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]


def disable_wrappers() -> list[tuple[Callable[..., Any], bool]]:
    """``(fn, recursive)`` of every live function made by ``torch._disable_dynamo(fn, recursive)``."""
    import torch

    inner_code = torch._disable_dynamo(_noop).__code__
    found = []
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__code__ is inner_code and obj.__closure__:
            cells = dict(zip(inner_code.co_freevars, (c.cell_contents for c in obj.__closure__)))
            if "fn" in cells:
                found.append((cells["fn"], bool(cells.get("recursive", True))))
    return found


def _noop() -> None:
    return None


def _delegate(fn: Callable[..., Any], recursive: bool) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        dynamo = sys.modules.get(_DYNAMO)
        disable = getattr(dynamo, "disable", None)
        if disable is None:  # torch._dynamo not (yet) imported: nothing can be compiling; disable(fn) is fn
            return fn(*args, **kwargs)
        real = disable(fn, recursive, wrapping=False)  # what torch._disable_dynamo would have built and cached
        setattr(fn, _CACHE, real)
        return real(*args, **kwargs)

    call.__fxenergy_lean__ = True  # type: ignore[attr-defined]
    return call


@contextmanager
def dynamo_deferred(*, torchvision: bool = False) -> Iterator[int]:
    """While the body runs, ``torch._disable_dynamo`` wrappers do not import torch._dynamo (yields how
    many were pre-set; 0 when torch._dynamo is already imported, where nothing is changed).

    ``torchvision=True`` first imports torchvision with :func:`import_torchvision`. For the CLI's
    one-shot ``report`` process only (see the module docstring): the Python API never does this.
    """
    if torchvision:
        import_torchvision()
    import torch.fx.experimental.proxy_tensor  # noqa: F401 - make_fx's dispatch_trace (training mode)

    import fxenergy.capture  # noqa: F401 - its dispatch modes' wrappers are made when it is imported: before the scan

    if _dynamo_loaded():
        yield 0
        return
    preset: list[tuple[Callable[..., Any], Callable[..., Any]]] = []
    for fn, recursive in disable_wrappers():
        if getattr(fn, _CACHE, None) is not None:
            continue
        delegate = _delegate(fn, recursive)
        try:
            setattr(fn, _CACHE, delegate)
        except (AttributeError, TypeError):  # an object that takes no attributes: torch could not cache either
            continue
        preset.append((fn, delegate))
    try:
        yield len(preset)
    finally:
        for fn, delegate in preset:
            if getattr(fn, _CACHE, None) is delegate:
                delattr(fn, _CACHE)
