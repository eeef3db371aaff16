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

Two more first imports of a torchvision ``report`` are made by torch for nothing the report uses
(docs/validation.md, "A first `report resnet18` without sympy or triton"):

* sympy (0.3-0.5 s with ``torch.fx.experimental.symbolic_shapes``): every ``torch._check`` and torch's
  Python meta kernels import symbolic_shapes' guards, and ``elementwise_dtypes`` imports sympy for an
  ``isinstance(x, sympy.Basic)``; on a meta capture every value they see is a plain bool or int.
  :func:`plain_shape_checks` (torchvision models only, around the build and analysis) puts placeholders
  for both modules in ``sys.modules`` whose functions answer plain values as torch's do
  (``tests/test_cold_start.py`` compares them on a grid) and hand anything else to the real module,
  imported then;
* triton (0.1 s): ``torch.utils.flop_counter``, whose formula table the op registry reads, imports it for
  one ``isinstance`` check; :func:`import_flop_counter` imports the table without it.

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

__all__ = ["import_torchvision", "dynamo_deferred", "disable_wrappers", "plain_shape_checks", "import_flop_counter",
           "hidden_packages"]

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
    why = "placeholder while torchvision is imported (fxenergy._lean)"
    pkg, utils = _placeholder(_DYNAMO, placeholders, why), _placeholder(_DYNAMO + ".utils", placeholders, why)
    utils.is_compile_supported = _real_is_compile_supported  # type: ignore[attr-defined]
    placeholders.update({_DYNAMO: pkg, _DYNAMO + ".utils": utils})
    sys.modules.update(placeholders)
    try:
        importlib.import_module("torchvision.models")
    finally:
        _remove(placeholders)
    return True


def _placeholder(name: str, placeholders: dict[str, types.ModuleType], why: str) -> types.ModuleType:
    """An empty module standing in for ``name`` in ``sys.modules``: a dunder asked of it raises
    AttributeError (introspection asks every module for ``__file__``; a submodule import asks for
    ``__path__`` and so fails loudly rather than load half a package); any other attribute removes
    every placeholder of ``placeholders`` and answers from the real module, imported there and then."""

    def getattr_(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        _remove(placeholders)
        return getattr(importlib.import_module(name), attr)

    module = types.ModuleType(name, why)
    module.__getattr__ = getattr_  # type: ignore[method-assign]
    return module


@contextmanager
def hidden_packages(*names: str) -> Iterator[tuple[str, ...]]:
    """While the body runs, ``import NAME`` raises ImportError for each of ``names`` not yet imported
    (``sys.modules[NAME] = None``, Python's documented way, so ``importlib.util.find_spec`` answers None too);
    yields the names hidden. On exit they import normally again."""
    hidden = tuple(n for n in names if n not in sys.modules)
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield hidden
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _remove(placeholders: dict[str, types.ModuleType]) -> None:
    for name, module in placeholders.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]
        parent = sys.modules.get(name.rpartition(".")[0])
        child = name.rpartition(".")[2]
        # vars(), not getattr: torch's module __getattr__ would import torch._dynamo to answer
        if parent is not None and vars(parent).get(child) is module:  # set by plain_shape_checks
            delattr(parent, child)


def disable_wrappers() -> list[tuple[Callable[..., Any], bool]]:
    """``(fn, recursive)`` of every live function made by ``torch._disable_dynamo(fn, recursive)``."""
    import torch

    inner_code = torch._disable_dynamo(_noop).__code__
    found = []
    for obj in gc.get_referrers(inner_code):  # the functions made from that code (2.5x faster than get_objects)
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


# --------------------------------------------------------------------------------------------------
# sympy: torch's shape checks on plain values

_SHAPES = "torch.fx.experimental.symbolic_shapes"

# torch releases whose symbolic_shapes functions below were read and checked against the plain-value
# answers here (tests/test_cold_start.py compares them on a grid of plain values and fails when the
# installed torch is not listed); on any other release plain_shape_checks changes nothing.
CHECKED_TORCH = ("2.15",)


def _torch_checked() -> bool:
    import torch

    return str(torch.__version__).startswith(tuple(v + "." for v in CHECKED_TORCH))


def _real_shapes(attr: str) -> Any:
    """``attr`` of the real torch.fx.experimental.symbolic_shapes (imported now if it is not yet; the
    placeholders, if present, are removed first so that the import makes the real modules)."""
    # both placeholders go first: the real module imports sympy, which must then be the real one too
    _remove({name: m for name in (_SHAPES, "sympy") if vars(m := sys.modules.get(name, sys)).get("__fxenergy_lean__")})
    return getattr(importlib.import_module(_SHAPES), attr)


def _plain(v: object) -> bool:
    return type(v) is bool or type(v) is int


# Each answers as torch's function of the same name does (torch 2.15, symbolic_shapes.py) when every
# argument is a plain bool / int (or a flat tuple or list of them), and otherwise calls torch's own.
# A plain value cannot be symbolic, so none of them needs a ShapeEnv, sympy or a guard there.

def _expect_true(a: Any, skip: int = 0) -> Any:
    if type(a) is bool:  # torch: a SymBool is asked of its node; a bool is returned; anything else raises
        return a
    return _real_shapes("expect_true")(a, skip + 1)  # +1: torch reads its caller's frame, past this one


def _guard_or_false(a: Any) -> Any:
    if type(a) is bool:  # torch's _guard_or: a bool is returned as it is
        return a
    return _real_shapes("guard_or_false")(a)


def _guard_or_true(a: Any) -> Any:
    if type(a) is bool:
        return a
    return _real_shapes("guard_or_true")(a)


def _is_nested_int(s: Any) -> Any:
    import torch

    if not isinstance(s, torch.SymInt):  # torch: isinstance(s, SymInt) and s.node.is_nested_int()
        return False
    return _real_shapes("is_nested_int")(s)


def _sym_and(x: Any, *others: Any) -> Any:
    if type(x) is bool and all(type(y) is bool for y in others):  # torch: x & y & ... (bools give a bool)
        return all((x, *others))
    return _real_shapes("sym_and")(x, *others)


def _sym_or(x: Any, *others: Any) -> Any:
    if type(x) is bool and all(type(y) is bool for y in others):
        return any((x, *others))
    return _real_shapes("sym_or")(x, *others)


def _sym_eq(x: Any, y: Any) -> Any:
    if _plain(x) and _plain(y):  # torch: two ints compare with ==
        return x == y
    if (isinstance(x, (tuple, list)) and isinstance(y, (tuple, list))
            and all(_plain(v) for v in x) and all(_plain(v) for v in y)):
        return len(x) == len(y) and all(a == b for a, b in zip(x, y))  # torch: lengths, then every pair
    return _real_shapes("sym_eq")(x, y)


PLAIN_SHAPE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "expect_true": _expect_true, "guard_or_false": _guard_or_false, "guard_or_true": _guard_or_true,
    "is_nested_int": _is_nested_int, "sym_and": _sym_and, "sym_or": _sym_or, "sym_eq": _sym_eq,
}
"""The symbolic_shapes functions the placeholder answers on plain values (see :func:`plain_shape_checks`)."""

# Imported together with the ones above (torch._refs._broadcast_shapes, torch._prims_common.is_contiguous
# & co.) but not called on the meta captures checked: the placeholder hands each call to torch's own.
DELEGATED_SHAPE_FUNCTIONS = ("guarding_hint_or_throw", "has_guarding_hint", "guard_size_oblivious",
                             "statically_known_true")


def _delegated(attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _real_shapes(attr)(*args, **kwargs)

    call.__name__ = attr
    return call


class _BasicCheck(type):
    """``isinstance(x, sympy.Basic)`` without sympy imported: no sympy object can exist until it is."""

    def __instancecheck__(cls, obj: object) -> bool:
        real = sys.modules.get("sympy")
        if real is None or vars(real).get("__fxenergy_lean__"):
            return False
        return isinstance(obj, real.Basic)

    def __subclasscheck__(cls, sub: type) -> bool:
        real = sys.modules.get("sympy")
        if real is None or vars(real).get("__fxenergy_lean__"):
            return False
        return issubclass(sub, real.Basic)


class LazyBasic(metaclass=_BasicCheck):
    """Stands for ``sympy.Basic`` in isinstance / issubclass checks while sympy is not imported."""


def _install(name: str, placeholders: dict[str, types.ModuleType], attrs: dict[str, Any]) -> None:
    """Put a placeholder for the not yet imported module ``name`` in ``sys.modules`` and on its parent
    package (as an import would), carrying ``attrs`` and the real module's spec (so that
    ``importlib.util.find_spec`` answers as before)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    module = _placeholder(name, placeholders, "placeholder for plain shape checks (fxenergy._lean)")
    module.__dict__.update(attrs, __spec__=spec, __fxenergy_lean__=True)
    placeholders[name] = module
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


@contextmanager
def plain_shape_checks() -> Iterator[bool]:
    """While the body runs, torch's checks on plain (non-symbolic) shapes do not import sympy.

    Every ``torch._check(cond)`` runs ``from torch.fx.experimental.symbolic_shapes import expect_true``,
    and torch's Python meta kernels and references (meta weight init's ``normal_``, ``empty_like``,
    convolution, pooling and batch-norm shapes, broadcasting) import ``guard_or_false``, ``sym_eq`` & co.
    the same way; importing that module imports sympy (0.3-0.5 s of a cold ``report resnet18``). On a
    meta capture every value they see is a plain bool or int. So, in the one-shot CLI process only, a
    placeholder module stands in for symbolic_shapes: the functions of :data:`PLAIN_SHAPE_FUNCTIONS`
    answer plain values as torch's do and hand anything else to torch's own; any other name asked of it
    imports the real module, which replaces the placeholder from then on. Yields whether the placeholder
    was installed (not when the module is already imported or the torch release is not in
    :data:`CHECKED_TORCH`). On exit the placeholder is removed if still present.
    """
    import torch.fx.experimental  # noqa: F401 - the placeholder's parent package

    if _SHAPES in sys.modules or "sympy" in sys.modules or not _torch_checked():
        yield False
        return
    placeholders: dict[str, types.ModuleType] = {}
    _install(_SHAPES, placeholders, {**PLAIN_SHAPE_FUNCTIONS, **{n: _delegated(n) for n in DELEGATED_SHAPE_FUNCTIONS}})
    _install("sympy", placeholders, {"Basic": LazyBasic})
    try:
        yield True
    finally:
        _remove(placeholders)


# --------------------------------------------------------------------------------------------------
# triton: torch.utils.flop_counter's formula table

_FLOP_COUNTER = "torch.utils.flop_counter"
_NO_TRITON = "triton not found; flop counting will not work for triton kernels"  # torch's warning when hidden


class _JITFunctionCheck(type):
    def __instancecheck__(cls, obj: object) -> bool:
        try:
            from triton.runtime.jit import JITFunction
        except ImportError:  # what torch falls back to when triton is missing
            return obj is None
        return isinstance(obj, JITFunction)


class LazyJITFunction(metaclass=_JITFunctionCheck):
    """Stands for ``triton.runtime.jit.JITFunction`` in ``isinstance`` checks; imports triton on the first."""


def import_flop_counter() -> bool:
    """``import torch.utils.flop_counter`` without importing triton (about 0.1 s); returns whether it did.

    fxenergy reads the module's ``flop_registry`` (formulas for ATen ops). The module imports triton
    only to bind ``_JITFunction`` (falling back to ``NoneType`` with a warning when triton is missing),
    which ``register_flop_formula`` alone uses, in one ``isinstance`` check of its targets. Here triton is
    hidden for that import (torch's warning about it filtered out), then ``_JITFunction`` is set to
    :class:`LazyJITFunction`, which answers that check as triton's class would, importing triton then.
    For the one-shot CLI process only; not done when the module or triton is already imported, when
    triton is not installed, or on a torch release not in :data:`CHECKED_TORCH`.
    """
    import importlib.util
    import logging

    if (_FLOP_COUNTER in sys.modules or "triton" in sys.modules or not _torch_checked()
            or importlib.util.find_spec("triton") is None):
        importlib.import_module(_FLOP_COUNTER)
        return False

    def not_the_triton_warning(record: logging.LogRecord) -> bool:
        return record.getMessage() != _NO_TRITON

    log = logging.getLogger(_FLOP_COUNTER)
    log.addFilter(not_the_triton_warning)
    try:
        with hidden_packages("triton"):
            module = importlib.import_module(_FLOP_COUNTER)
    finally:
        log.removeFilter(not_the_triton_warning)
    module._JITFunction = LazyJITFunction  # type: ignore[attr-defined]
    return True
