"""Capture: ``nn.Module`` + example inputs → ``torch.fx.GraphModule`` whose nodes know their shapes.

Everything runs on the meta device: the model is copied with every parameter and buffer replaced by
a meta tensor of the same shape and dtype (the caller's model is never touched, and no weight memory
or arithmetic is spent), and the inputs are replaced likewise.

The fallback ladder, tried in order until one works:

1. ``torch.fx.symbolic_trace`` (fast path; plain modules such as every torchvision classifier;
   skipped under ``auto`` for transformers models, whose forward it cannot trace; in
   ``mode="training"`` it comes after ``record``, which records backward in the same run where
   symbolic_trace needs a make_fx joint graph, many times slower);
2. ``record``: one eager run of the model on fake tensors (what ``torch.export`` traces with), during
   which every top-level torch call becomes one graph node, wired to its inputs by tensor identity,
   and every ATen call it dispatches is recorded straight into that node's trace (no second run);
   see :class:`_Recording`. In inference, a module call identical to an earlier one (the same
   classes, attributes, weight shapes and input metadata: a model's repeated layers) is replayed:
   the earlier call's nodes are copied with inputs, weights and module paths remapped instead of
   running it again (:class:`_Replay`). It fails where the forward needs data (``.item()`` of a tensor);
3. ``torch.export.export(strict=False)`` (anything the eager run cannot do without data).

When none works, :class:`~fxenergy.errors.CaptureError` lists what was tried and why each failed.

After ``symbolic_trace`` or ``export``, the graph runs once on meta tensors under a dispatch mode that records, for every
node, the ATen operator calls it dispatched (with shapes and dtypes), its output shapes, the module
path it belongs to and its phase. That :class:`~fxenergy.records.NodeTrace` is what all analysis
passes read. In ``mode="training"`` the forward graph is first turned into one joint graph of
forward + backward (``torch.autograd.grad`` traced by ``make_fx``) + an optimizer update, written as
the ATen ops the real optimizer performs, so backward costs come from real op formulas. ``record``
records the same three phases in its one run (forward, ``torch.autograd.grad``, optimizer update).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import itertools
import logging
import operator
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.fx._pytree as fx_pytree
from torch.fx import traceback as fx_traceback
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.utils.stateless import _reparametrize_module
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from fxenergy.errors import CaptureError, UserInputError
from fxenergy.options import METHODS, MODES, OPTIMIZERS
from fxenergy.records import META_KEY, TRACE, NodeTrace, OpCall, TensorSpec, put_record

__all__ = ["Capture", "capture", "METHODS", "MODES", "OPTIMIZERS", "OPTIMIZER_STATE_TENSORS", "PARAMETER", "INPUT"]


_PHASE = "fxenergy_phase"
_MODULE = "fxenergy_module"
_TYPE = "fxenergy_module_type"

# module_type of the traces of graph inputs (phase "input")
PARAMETER = "(parameter)"
INPUT = "(input)"


@dataclass(frozen=True)
class Capture:
    """A traced, shape-annotated graph and how it was obtained.

    ``graph_module`` holds meta parameters only. Every node that ran carries a
    :class:`~fxenergy.records.NodeTrace` under ``node.meta["fxenergy"]["trace"]``.
    """

    graph_module: torch.fx.GraphModule
    method: str
    mode: str
    optimizer: str | None
    attempts: tuple[str, ...]
    input_specs: tuple[TensorSpec, ...]
    output_specs: tuple[TensorSpec, ...]
    param_count: int
    param_bytes: int
    buffer_bytes: int


def capture(
    model: torch.nn.Module,
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    mode: str = "inference",
    method: str = "auto",
    optimizer: str = "adamw",
    replay: bool = True,
) -> Capture:
    """Trace ``model`` called as ``model(*args, **kwargs)`` and record every node's ATen calls.

    ``args`` may be a single tensor or a tuple. Nothing is computed: inputs and weights become meta
    tensors. ``replay=False`` runs every module call of the ``record`` capture instead of copying the
    nodes of an identical earlier call (the results are the same; see :class:`_Replay`).

    >>> import torch
    >>> cap = capture(torch.nn.Linear(4, 3), torch.randn(2, 4))
    >>> cap.method, cap.param_count
    ('symbolic_trace', 15)
    """
    if not isinstance(model, torch.nn.Module):
        raise UserInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_choice("mode", mode, MODES)
    _check_choice("method", method, METHODS)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    args = args if isinstance(args, tuple) else (args,)
    kwargs = dict(kwargs or {})

    meta_model = _meta_copy(model)
    meta_model.train(mode == "training")
    margs, mkwargs = pytree.tree_map_only(torch.Tensor, _to_meta, (args, kwargs))
    if _is_transformers(meta_model):
        mkwargs = _no_cache(meta_model, mkwargs)
    params = dict(meta_model.named_parameters())
    buffers = dict(meta_model.named_buffers())

    def traced(trace: Callable[[], tuple[torch.fx.GraphModule, list[Any]]]) -> Callable[[], Any]:
        def run() -> tuple[torch.fx.GraphModule, tuple[TensorSpec, ...]]:
            with _quiet_torch():
                gm, flat_inputs = trace()
            persistent = [*gm.parameters(), *gm.buffers()]
            if mode == "training":
                gm, flat_inputs, persistent = _joint_graph(gm, flat_inputs, optimizer)
            return gm, _propagate(gm, flat_inputs, persistent)
        return run

    ladder: list[tuple[str, Callable[[], tuple[torch.fx.GraphModule, tuple[TensorSpec, ...]]]]] = []
    if method in ("auto", "symbolic_trace") and not (method == "auto" and _is_transformers(meta_model)):
        ladder.append(("symbolic_trace", traced(lambda: _symbolic_trace(meta_model, margs, mkwargs))))
    if method in ("auto", "record"):
        def record() -> tuple[torch.fx.GraphModule, tuple[TensorSpec, ...]]:
            with _quiet_torch():
                return _record(meta_model, margs, mkwargs, mode, optimizer, replay)
        # training: record first, as it records backward in its one run, where the joint graph
        # (make_fx of autograd.grad) costs 25-50 s per torchvision classifier on 2 cores
        ladder.insert(0 if mode == "training" else len(ladder), ("record", record))
    if method in ("auto", "export"):
        ladder.append(("export", traced(lambda: _export(meta_model, margs, mkwargs))))

    attempts: list[str] = []
    for name, run in ladder:
        try:
            gm, outputs = run()
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            attempts.append(f"{name}: {_one_line(e)}")
            continue
        return Capture(
            graph_module=gm,
            method=name,
            mode=mode,
            optimizer=optimizer if mode == "training" else None,
            attempts=tuple(attempts),
            input_specs=tuple(TensorSpec.of(t) for t in pytree.tree_leaves((margs, mkwargs)) if isinstance(t, torch.Tensor)),
            output_specs=outputs,
            param_count=sum(p.numel() for p in params.values()),
            param_bytes=sum(p.nbytes for p in params.values()),
            buffer_bytes=sum(b.nbytes for b in buffers.values()),
        )
    raise CaptureError(
        f"could not capture {type(model).__name__}: " + "; ".join(attempts)
        + " (check the example input's shape and dtype; untraceable Python control flow needs a simpler forward)"
    )


# --------------------------------------------------------------------------------------------------
# meta copies


def _meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """Deep-copy ``model`` with every parameter and buffer replaced by a meta tensor (tying kept)."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        if id(t) in memo:
            continue
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = torch.nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, torch.nn.Parameter) else meta
    try:
        return copy.deepcopy(model, memo)
    except Exception as e:  # noqa: BLE001
        if all(t.device.type == "meta" for t in itertools.chain(model.parameters(), model.buffers())):
            return model
        raise UserInputError(
            f"cannot make a weight-free copy of {type(model).__name__} ({_one_line(e)}); "
            "build the model under `with torch.device('meta'):` and pass that instead"
        ) from e


def _to_meta(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def _is_transformers(model: torch.nn.Module) -> bool:
    return any(c.__module__.startswith("transformers.") for c in type(model).__mro__)


def _no_cache(model: torch.nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn the KV cache off on the meta copy (and in the call, when forward takes ``use_cache``).

    A transformers model built from a default config returns a ``DynamicCache`` (not a tensor, not a
    pytree) that no tracer can output; inference cost does not depend on it. The user's model and
    its config are untouched: only the deep copy's config changes.
    """
    import inspect

    configs = [getattr(model, "config", None)]
    for m in model.modules():
        c = getattr(m, "config", None)
        if c is not None and all(c is not x for x in configs):
            configs.append(c)
    for config in configs:
        for sub in (config, *(getattr(config, k, None) for k in ("text_config", "decoder", "encoder"))):
            if sub is not None and hasattr(sub, "use_cache"):
                with contextlib.suppress(Exception):
                    sub.use_cache = False
    try:
        takes = "use_cache" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    if takes and "use_cache" not in kwargs:
        kwargs = {**kwargs, "use_cache": False}
    return kwargs


# --------------------------------------------------------------------------------------------------
# forward graphs


def _symbolic_trace(model: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[torch.fx.GraphModule, list[Any]]:
    gm = torch.fx.symbolic_trace(model)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(args) > len(placeholders):
        raise TypeError(f"forward takes {len(placeholders)} inputs but {len(args)} were given")
    flat: list[Any] = list(args)
    for n in placeholders[len(args):]:
        if n.target in kwargs:
            flat.append(kwargs.pop(n.target))
        elif n.args:
            flat.append(n.args[0])
        else:
            raise TypeError(f"missing input {n.target!r}")
    if kwargs:
        raise TypeError(f"forward got unexpected inputs {sorted(kwargs)}")
    return gm, flat


def _export(model: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[torch.fx.GraphModule, list[Any]]:
    ep = torch.export.export(model, args, kwargs=kwargs, strict=False)
    gm = ep.module()
    return gm, list(fx_pytree.tree_flatten_spec((args, kwargs), gm._in_spec))


# --------------------------------------------------------------------------------------------------
# record: one eager run on meta tensors, the graph built from what ran


class _Recording(TorchDispatchMode):
    """Builds a ``torch.fx.Graph`` from one eager run on meta tensors.

    Two modes cooperate. The :class:`_FunctionLevel` torch-function mode sees every top-level
    ``torch`` call the model makes (``F.linear``, ``x.view``, ``torch.matmul``…) and turns it into one
    ``call_function`` node, whose arguments are wired to the nodes that produced its tensor inputs (by
    tensor identity). This dispatch mode records, into the node being built, every ATen call that
    function dispatched (the same :class:`~fxenergy.records.OpCall`\\ s the export path records by
    running its graph again). ATen calls made outside any torch function (the autograd engine's
    backward) become one node each. Global module forward hooks give each node its module path and
    type; in training, autograd-node pre-hooks give each backward call the module of the forward
    call that created the node it differentiates.
    """

    def __init__(self, model: torch.nn.Module, persistent: dict[str, torch.Tensor]):
        super().__init__()
        self.graph = torch.fx.Graph()
        self.attrs: dict[str, torch.Tensor] = {}
        self.producer: dict[int, torch.fx.Node] = {}
        self._keep: list[Any] = []
        self.persistent: set[int] = set()
        self.calls: list[OpCall] | None = None  # the ATen calls of the torch function running now
        self.phase = "forward"
        self.module_names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[tuple[str, str]] = []
        self.fixed: tuple[str, str] | None = None  # module of every node while set (loss, optimizer)
        self.backward_module: tuple[str, str] = ("", "")
        self._seen_grad_fns: set[int] = set()
        self.made: dict[torch.fx.Node, int] = {}  # every node -> its position in ``order``
        self.order: list[torch.fx.Node] = []
        self.paused = False  # while set, both modes pass calls through unrecorded (replayed outputs)
        self.templates: list[_Template] = []  # module calls being recorded for replay (outermost first)
        for name, t in persistent.items():  # every parameter and buffer, read or not (as export has)
            self._attr(name, t)

    # ---------------------------------------------------------------- graph inputs
    def _attr(self, name: str, t: torch.Tensor, kind: str = PARAMETER) -> torch.fx.Node:
        self.attrs[name] = t
        node = self._made(self.graph.get_attr(name))
        path = name.rpartition(".")[0] if kind == PARAMETER else ""
        put_record(node, TRACE, NodeTrace(path, kind, "input", (), (TensorSpec.of(t),)))
        self._own(t, node)
        if kind == PARAMETER:
            self.persistent.add(id(t))
        return node

    def placeholder(self, name: str, t: torch.Tensor, kind: str = INPUT) -> None:
        node = self._made(self.graph.placeholder(_identifier(name)))
        put_record(node, TRACE, NodeTrace("", kind, "input", (), (TensorSpec.of(t),)))
        self._own(t, node)
        if kind == PARAMETER:
            self.persistent.add(id(t))

    def _made(self, node: torch.fx.Node) -> torch.fx.Node:
        self.made[node] = len(self.order)
        self.order.append(node)
        return node

    def _own(self, t: torch.Tensor, node: torch.fx.Node) -> None:
        self._keep.append(t)  # keep every tensor alive so that ids stay unique
        self.producer[id(t)] = node

    def _node_of(self, t: torch.Tensor) -> torch.fx.Node:
        node = self.producer.get(id(t))
        if node is None:  # a tensor the run did not make: a constant held outside parameters/buffers
            node = self._attr(f"_constant{len(self.attrs)}", t, INPUT)
        return node

    # ---------------------------------------------------------------- modules
    def module(self) -> tuple[str, str]:
        if self.fixed is not None:
            return self.fixed
        if self.phase == "backward":
            return self.backward_module
        return self.stack[-1] if self.stack else ("", "")

    def pre_hook(self, m: torch.nn.Module, *_: Any) -> None:
        path = self.module_names.get(id(m))
        if path is None:  # a module made during forward: it lives in its caller
            path = self.stack[-1][0] if self.stack else ""
        self.stack.append((path, type(m).__name__))

    def post_hook(self, m: torch.nn.Module, *_: Any) -> None:
        if self.stack:
            self.stack.pop()

    # ---------------------------------------------------------------- nodes
    def add_node(self, target: Any, args: Any, kwargs: Any, out: Any, calls: Sequence[OpCall]) -> None:
        new = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not calls and not new:
            return
        if not calls and all(self.producer.get(id(t)) is not None for t in new):
            return  # returned tensors it was given (e.g. ``detach`` of nothing new, ``contiguous``)
        if self.templates:  # an in-place call re-owns a tensor made before the template: its wiring changes
            self._refuse_external([t for t in new if id(t) in self.producer], "writes its input in place")
        fn_args, fn_kwargs = pytree.tree_map(self._arg, (tuple(args), dict(kwargs or {})))
        node = self._made(self.graph.call_function(_target(target), fn_args, fn_kwargs))
        path, mtype = self.module()
        outputs = tuple(TensorSpec.of(t) for t in new)
        put_record(node, TRACE, NodeTrace(path, mtype, self.phase, tuple(calls), outputs))
        if isinstance(out, (tuple, list)) and len(new) > 1:  # one getitem node per tensor, as export has
            for i, item in enumerate(out):
                if isinstance(item, torch.Tensor):
                    g = self._made(self.graph.call_function(operator.getitem, (node, i)))
                    put_record(g, TRACE, NodeTrace(path, mtype, self.phase, (), (TensorSpec.of(item),)))
                    self._own(item, g)
            for t in new:
                if id(t) not in self.producer or self.producer[id(t)] is node:
                    self._own(t, node)
        else:
            for t in new:
                self._own(t, node)
        if self.phase == "forward" and self.record_grad_fns:
            self._label_grad_fns(new, (path, mtype))

    record_grad_fns = False

    def _arg(self, a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            return self._node_of(a)
        if a is None or isinstance(a, (bool, int, float, str, torch.dtype, torch.device, torch.memory_format,
                                       torch.layout)):
            return a
        if isinstance(a, slice):
            return slice(*(x if x is None or isinstance(x, int) else str(x) for x in (a.start, a.stop, a.step)))
        if a is Ellipsis:
            return a
        return f"<{type(a).__name__}>"

    def _label_grad_fns(self, outs: list[torch.Tensor], module: tuple[str, str]) -> None:
        """Tag the autograd nodes this call created with its module (read back during backward)."""
        todo = [t.grad_fn for t in outs if t.grad_fn is not None]
        while todo:
            fn = todo.pop()
            if fn is None or id(fn) in self._seen_grad_fns:
                continue
            self._seen_grad_fns.add(id(fn))
            self._keep.append(fn)
            fn.register_prehook(functools.partial(self._enter_backward, module))
            fn.register_hook(functools.partial(self._enter_backward, ("", "")))  # the engine's own sums: root
            todo.extend(f for f, _ in fn.next_functions if f is not None)

    def _refuse_external(self, tensors: Sequence[torch.Tensor], why: str) -> None:
        """Templates being recorded that did not make one of ``tensors`` cannot be replayed (``why``)."""
        for t in tensors:
            node = self.producer.get(id(t))
            for tpl in self.templates:
                if node is None or self.made[node] < tpl.start:
                    tpl.refuse(why)

    def _enter_backward(self, module: tuple[str, str], *_: Any) -> None:
        self.backward_module = module

    def fixed_module(self, module_type: str) -> Callable[[str], contextlib.AbstractContextManager[None]]:
        """``scope(name)`` for :func:`_optimizer_update`: ops inside it belong to parameter ``name``'s module."""
        @contextlib.contextmanager
        def scope(name: str) -> Iterator[None]:
            self.fixed = (name.rpartition(".")[0], module_type)
            try:
                yield
            finally:
                self.fixed = None
        return scope

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace == "prim" or self.paused:  # fake tensors' metadata queries (``prim.device``)
            return out
        if self.templates and func.overloadpacket.__name__ in _METADATA_MUTATORS:  # resize_, unsqueeze_...
            self._refuse_external([a for a in args[:1] if isinstance(a, torch.Tensor)], f"mutates metadata ({func})")
        pidx = tuple(i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and id(a) in self.persistent)
        if pidx and func.is_view and isinstance(out, torch.Tensor):
            self._keep.append(out)  # a view of a weight (e.g. its transpose) is still the weight
            self.persistent.add(id(out))
        spec = pytree.tree_map_only(torch.Tensor, TensorSpec.of, (args, kwargs, out))
        call = OpCall(func, spec[0], spec[1], spec[2], pidx)
        if self.calls is not None:
            self.calls.append(call)
        else:  # no torch function around it (the autograd engine): a node of its own
            self.add_node(func, args, kwargs, out, (call,))
        return out


class _FunctionLevel(TorchFunctionMode):
    """One graph node per top-level torch function call (see :class:`_Recording`)."""

    def __init__(self, rec: _Recording):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        rec = self.rec
        if rec.calls is not None or rec.paused or func is torch.autograd.grad:  # inside a recorded function, or backward
            return func(*args, **kwargs)  # (backward: one node per ATen call the engine dispatches)
        calls: list[OpCall] = []
        rec.calls = calls
        try:
            out = func(*args, **kwargs)
        finally:
            rec.calls = None
        if calls or (isinstance(out, torch.Tensor) or (isinstance(out, (tuple, list)) and any(isinstance(o, torch.Tensor) for o in out))):
            rec.add_node(func, args, kwargs, out, calls)
        return out


def _record(model: torch.nn.Module, args: tuple, kwargs: dict, mode: str,
            optimizer: str, replay: bool = True) -> tuple[torch.fx.GraphModule, tuple[TensorSpec, ...]]:
    """Run ``model`` once eagerly on meta tensors and build its graph from the recording."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    # Fake tensors (what torch.export traces with) rather than bare meta ones: libraries test for
    # them (transformers' ``is_tracing``) to take their data-independent path instead of ``.item()``.
    fake = FakeTensorMode(allow_non_fake_inputs=True)
    # from_tensor already gives a fake Parameter (requires_grad kept); wrapping it again cost ~0.7 ms each
    named: dict[str, torch.Tensor] = {
        k: fake.from_tensor(t) for k, t in itertools.chain(model.named_parameters(), model.named_buffers())}
    args, kwargs = pytree.tree_map_only(torch.Tensor, fake.from_tensor, (args, kwargs))
    rec = _Recording(model, named)
    leaves, _ = pytree.tree_flatten((args, kwargs))
    paths = [pytree.keystr(k) for k, _ in pytree.tree_flatten_with_path((args, kwargs))[0]]
    for path, t in zip(paths, leaves):
        if isinstance(t, torch.Tensor) and id(t) not in rec.producer:
            rec.placeholder(path, t)
    state: dict[str, list[torch.Tensor]] = {}
    training = mode == "training"
    if training:
        rec.record_grad_fns = True
        for k, p in named.items():
            if isinstance(p, torch.nn.Parameter) and p.requires_grad:
                state[k] = _optimizer_state(p, optimizer)
                for i, s in enumerate(state[k]):
                    rec.placeholder(f"state_{k}_{i}", s, PARAMETER)
    # transformers' layer_idx only indexes the KV cache, which capture turns off (_no_cache)
    others = (torch.nn.modules.module._global_forward_hooks, torch.nn.modules.module._global_forward_pre_hooks)
    replaying = replay and not training and not any(others)  # a hook of the user's may do anything
    replayer = _Replay(rec, model, frozenset({"layer_idx"}) if _is_transformers(model) else frozenset(),
                       enabled=replaying)
    pre = torch.nn.modules.module.register_module_forward_pre_hook(rec.pre_hook)
    post = torch.nn.modules.module.register_module_forward_hook(rec.post_hook)
    try:
        with (torch.set_grad_enabled(training), _reparametrize_module(model, named, tie_weights=True),
              replayer.installed(), fake, rec, _FunctionLevel(rec)):
            out = model(*args, **kwargs)
            result = out
            if training:
                rec.fixed = ("(loss)", "")
                loss = _summed_loss([o for o in pytree.tree_leaves(out)
                                     if isinstance(o, torch.Tensor) and o.is_floating_point() and o.requires_grad])
                result = loss
                rec.fixed = None
                rec.phase = "backward"
                trainable = list(state)
                grads = torch.autograd.grad(loss, [named[k] for k in trainable], allow_unused=True)
                rec.phase = "optimizer"
                _optimizer_update(optimizer, named, dict(zip(trainable, grads)), state, rec.fixed_module(optimizer))
    finally:
        pre.remove()
        post.remove()
    out_leaves = [t for t in pytree.tree_leaves(result) if isinstance(t, torch.Tensor)]
    rec.graph.output(tuple(rec._node_of(t) for t in out_leaves))
    from torch.fx._lazy_graph_module import _make_graph_module, _use_lazy_graph_module

    with _use_lazy_graph_module(True):  # its Python code is generated on first use (never, for a record)
        gm = _make_graph_module(rec.attrs, rec.graph, class_name=type(model).__name__)
    gm.meta["fxenergy_replayed_calls"] = replayer.replayed
    gm.meta["fxenergy_replay_refused"] = dict(replayer.refused)
    return gm, tuple(TensorSpec.of(t) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor))


# --------------------------------------------------------------------------------------------------
# replay: a module call identical to one already recorded is copied, not run again


# in-place ops that change a tensor's shape, strides or storage (not only its values)
_METADATA_MUTATORS = frozenset({"resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_",
                                "transpose_", "t_", "swapdims_", "swapaxes_", "detach_"})
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")
# a module's own containers and torch's bookkeeping, compared apart or not at all
_NOT_STATE = frozenset({"_parameters", "_buffers", "_modules", "forward", *_HOOK_DICTS, "_state_dict_hooks",
                        "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"})
_SIMPLE = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.layout,
           torch.memory_format, torch.Size)


class _Unkeyable(Exception):
    """A value whose identity cannot be part of a replay key (a symbolic size)."""


def _value_key(v: Any, keep: list[Any]) -> Any:
    """A hashable stand-in for ``v`` that is equal for two values only if the calls would see the same:
    simple values by type and value, containers element-wise, anything else by identity (kept alive
    in ``keep`` so that its id cannot be reused)."""
    if isinstance(v, _SIMPLE):
        if isinstance(v, torch.Size) and not all(type(d) is int for d in v):
            raise _Unkeyable(v)
        return (type(v), v)
    if isinstance(v, (tuple, list)):
        return (type(v), tuple(_value_key(x, keep) for x in v))
    if isinstance(v, dict):
        return (type(v), tuple((k, _value_key(x, keep)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        try:
            return (type(v), frozenset(_value_key(x, keep) for x in v))
        except TypeError:
            pass
    keep.append(v)
    return ("id", id(v))


def _module_state(modules: Sequence[torch.nn.Module], ignore: frozenset[str], keep: list[Any]) -> tuple:
    """Every attribute of ``modules`` but their children, weights and hooks, as a key (see
    :func:`_value_key`); parameters and buffers by name, shape, dtype and ``requires_grad``."""
    out = []
    for m in modules:
        d = vars(m)
        attrs = tuple((k, _value_key(v, keep)) for k, v in d.items() if k not in _NOT_STATE and k not in ignore)
        tensors = tuple((k, None if t is None else (tuple(t.shape), t.dtype, t.requires_grad))
                        for k, t in itertools.chain(d["_parameters"].items(), d["_buffers"].items()))
        out.append((type(m), attrs, tensors, tuple(d["_modules"])))
    return tuple(out)


class _Template:
    """The recording of one module call, and how to make it again for another call with the same key.

    ``nodes`` are the graph nodes the call made, in order; ``sources`` says, for each node outside
    them that they read, where a replay finds it: the call's ``n``-th tensor input, the module's own
    weight of relative name ``name``, or the same weight of another module (kept as is). ``outputs``
    rebuilds the return value: the recorded node of each tensor leaf and its shape, strides and dtype.
    """

    def __init__(self, module: torch.nn.Module, path: str, start: int):
        self.module, self.path, self.start = module, path, start
        self.why_not: str | None = None
        self.nodes: list[torch.fx.Node] = []
        self.suffix: list[str | None] = []  # module path of each node below ``path`` (None: elsewhere)
        self.sources: dict[torch.fx.Node, tuple[str, Any]] = {}
        self.outputs: list[Any] = []
        self.out_spec: Any = None

    def refuse(self, why: str) -> None:
        self.why_not = self.why_not or why


class _Replay:
    """Replays module calls whose key equals one already recorded (issue 10: Llama-2-70B runs 80
    identical decoder layers; all but the first are copies of the first's nodes).

    The key of a call: the module subtree's classes and every attribute but children (by value for
    numbers, strings and other plain values, by identity otherwise), the shapes, dtypes and
    ``requires_grad`` of its weights, and the call's inputs (tensors by type, shape, strides, storage
    offset, dtype, device, ``requires_grad``, aliasing between inputs and whether each is one of the
    module's own weights; other values as above), with autograd off and the subtree in eval mode.
    Attribute names in ``ignore`` are left out (transformers' ``layer_idx``, which indexes the KV cache
    that capture turns off). A call is recorded as a template only if it made no graph input (a
    constant the run did not make), read no tensor made before it but its inputs and weights, wrote
    no such tensor in place, changed no attribute of its modules and no container it was given, and
    returned only new, non-view tensors made by its own nodes (or its inputs), plus plain values.
    A replay copies the template's nodes, remapping inputs, the module's weights and module paths;
    the copies share the template's ATen call records (:class:`~fxenergy.records.NodeTrace` ``calls``
    and ``outputs``), and the returned tensors are fresh fake tensors of the recorded metadata.
    """

    def __init__(self, rec: _Recording, model: torch.nn.Module, ignore: frozenset[str], enabled: bool = True):
        self.rec, self.ignore = rec, ignore
        self._keep: list[Any] = []
        self.templates: dict[Any, _Template | None] = {}
        self.replayed = 0
        self.refused: dict[str, str] = {}
        self._subtree: dict[int, list[torch.nn.Module]] = {}
        self._weights: dict[int, dict[str, torch.Tensor]] = {}
        self.candidates: list[torch.nn.Module] = []
        self._static_id: dict[int, Any] = {}
        if not enabled:  # installed() patches nothing
            return
        # candidates: modules whose static structure (classes, attributes, weight shapes) another module shares
        seen: Counter[Any] = Counter()
        static: dict[int, Any] = {}
        for name, m in model.named_modules():
            if not name:
                continue
            subtree = list(m.modules())
            if any(getattr(x, h, None) for x in subtree for h in _HOOK_DICTS):
                continue  # a hook of its own may do anything
            try:
                static[id(m)] = _module_state(subtree, ignore, self._keep)
            except _Unkeyable:
                continue
            seen[static[id(m)]] += 1
        self.candidates = [m for name, m in model.named_modules() if name and seen.get(static.get(id(m)), 0) > 1]
        self._static_id = {id(m): static[id(m)] for m in self.candidates}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route the candidates' ``forward`` through :meth:`call` (instance attributes, removed after)."""
        patched = []
        try:
            for m in self.candidates:
                if "forward" in vars(m):
                    continue
                m.forward = functools.partial(self.call, m, m.forward)
                patched.append(m)
            yield
        finally:
            for m in patched:
                del m.forward

    # ---------------------------------------------------------------- keys
    def _key(self, m: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[Any, list[torch.Tensor]] | None:
        rec = self.rec
        if (rec.calls is not None or rec.fixed is not None or rec.phase != "forward" or torch.is_grad_enabled()
                or rec.paused):
            return None
        subtree = self._subtree.get(id(m))
        if subtree is None:
            subtree = self._subtree[id(m)] = list(m.modules())
            self._weights[id(m)] = dict(itertools.chain(m.named_parameters(remove_duplicate=False),
                                                        m.named_buffers(remove_duplicate=False)))
        if any(x.training for x in subtree):
            return None
        own = {id(t): k for k, t in self._weights[id(m)].items()}
        leaves: list[torch.Tensor] = []
        first: dict[int, int] = {}

        def sig(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                if id(v) not in rec.producer or not all(type(d) is int for d in v.shape):
                    raise _Unkeyable(v)  # a tensor the run did not make, or of symbolic size
                first.setdefault(id(v), len(leaves))
                leaves.append(v)
                role = own.get(id(v)) or ("weight" if id(v) in rec.persistent else first[id(v)])
                return (type(v), tuple(v.shape), v.stride(), v.storage_offset(), v.dtype, v.device,
                        v.requires_grad, v._is_view(), role)
            if isinstance(v, (tuple, list)):
                return (type(v), tuple(sig(x) for x in v))
            if isinstance(v, dict):
                return (type(v), tuple((k, sig(x)) for k, x in v.items()))
            return _value_key(v, self._keep)

        try:
            key = (self._static_id[id(m)], sig(args), sig(kwargs))
            hash(key)
        except (_Unkeyable, TypeError):
            return None
        return key, leaves

    # ---------------------------------------------------------------- calls
    def call(self, m: torch.nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        keyed = self._key(m, args, kwargs)
        if keyed is None:
            return forward(*args, **kwargs)
        key, leaves = keyed
        if key in self.templates:
            tpl = self.templates[key]
            if tpl is None:
                return forward(*args, **kwargs)
            self.replayed += 1
            return self._replay(tpl, m, leaves)
        return self._record(key, m, forward, args, kwargs, leaves)

    def _record(self, key: Any, m: torch.nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict,
                leaves: list[torch.Tensor]) -> Any:
        rec = self.rec
        subtree = self._subtree[id(m)]
        before = _module_state(subtree, frozenset(), self._keep)
        inputs: dict[torch.fx.Node, int] = {}
        for i, t in enumerate(leaves):
            node = rec.producer.get(id(t))
            if node is not None:
                inputs.setdefault(node, i)
        tpl = _Template(m, rec.module_names[id(m)], len(rec.made))
        rec.templates.append(tpl)
        try:
            out = forward(*args, **kwargs)
        finally:
            rec.templates.remove(tpl)
        if self._key(m, args, kwargs) != (key, leaves) and tpl.why_not is None:
            tpl.refuse("changed a value it was given")
        if _module_state(subtree, frozenset(), self._keep) != before:
            tpl.refuse("changed an attribute of its modules")
        if tpl.why_not is None:
            self._finish(tpl, m, inputs, out)
        if tpl.why_not is not None:
            self.refused.setdefault(f"{type(m).__name__} ({tpl.path})", tpl.why_not)
            self.templates[key] = None
        else:
            self.templates[key] = tpl
        return out

    def _finish(self, tpl: _Template, m: torch.nn.Module, inputs: dict[torch.fx.Node, int], out: Any) -> None:
        rec = self.rec
        tpl.nodes = rec.order[tpl.start:]
        inside = set(tpl.nodes)
        weights = {rec.producer.get(id(t)): k for k, t in self._weights[id(m)].items()}
        weights.pop(None, None)
        prefix = tpl.path + "."
        for n in tpl.nodes:
            if n.op != "call_function":
                return tpl.refuse("made a graph input (a tensor the run did not make)")
            for x in n.all_input_nodes:
                if x in inside or x in tpl.sources:
                    continue
                if x in inputs:
                    tpl.sources[x] = ("input", inputs[x])
                elif x in weights:
                    tpl.sources[x] = ("weight", weights[x])
                elif x.op == "get_attr" and x.meta[META_KEY][TRACE].module_type == PARAMETER:
                    tpl.sources[x] = ("same", x)  # a weight of a module outside this one (shared)
                else:
                    return tpl.refuse("read a tensor made before it that it was not given")
            path = n.meta[META_KEY][TRACE].module_path
            tpl.suffix.append(path[len(tpl.path):] if path == tpl.path or path.startswith(prefix) else None)
        flat, tpl.out_spec = pytree.tree_flatten(out)
        for v in flat:
            if not isinstance(v, torch.Tensor):
                if not isinstance(v, _SIMPLE):
                    return tpl.refuse(f"returned a {type(v).__name__}")
                tpl.outputs.append(("value", v))
                continue
            node = rec.producer.get(id(v))
            if node in inside:
                if v.requires_grad or id(v) in rec.persistent:
                    return tpl.refuse("returned a weight")
                base = v._base
                made = rec.producer.get(id(base)) if base is not None else None
                if made is not None and rec.made[made] < tpl.start:
                    return tpl.refuse("returned a view of a tensor made before it")
                # a view of a tensor of its own (GPT-2's Conv1D returns ``x.view(...)``) is rebuilt as a
                # view of a fresh storage of the same size, at the same offset and strides
                storage = v.untyped_storage().nbytes() // v.dtype.itemsize if base is not None else None
                tpl.outputs.append(("new", node, tuple(v.shape), v.stride(), v.storage_offset(), storage, v.dtype,
                                    v.device))
            elif node in inputs:
                tpl.outputs.append(("input", inputs[node]))
            else:
                return tpl.refuse("returned a tensor made before it that it was not given")

    def _replay(self, tpl: _Template, m: torch.nn.Module, leaves: list[torch.Tensor]) -> Any:
        rec = self.rec
        path = rec.module_names[id(m)]
        weights = self._weights[id(m)]  # filled by the key of this call
        env: dict[torch.fx.Node, torch.fx.Node] = {}
        for x, (kind, what) in tpl.sources.items():
            env[x] = (rec._node_of(leaves[what]) if kind == "input" else
                      rec._node_of(weights[what]) if kind == "weight" else what)
        for n, suffix in zip(tpl.nodes, tpl.suffix):
            new = rec._made(rec.graph.node_copy(n, env.__getitem__))
            new.meta = {}
            trace = n.meta[META_KEY][TRACE]
            if suffix is not None:
                trace = NodeTrace(path + suffix, trace.module_type, trace.phase, trace.calls, trace.outputs)
            put_record(new, TRACE, trace)
            env[n] = new
        flat = []
        rec.paused = True
        try:
            for o in tpl.outputs:
                if o[0] == "value":
                    flat.append(o[1])
                elif o[0] == "input":
                    flat.append(leaves[o[1]])
                else:
                    _, node, shape, stride, offset, storage, dtype, device = o
                    if storage is None:
                        t = torch.empty_strided(shape, stride, dtype=dtype, device=device)
                    else:
                        t = torch.empty(storage, dtype=dtype, device=device).as_strided(shape, stride, offset)
                    rec._own(t, env[node])
                    flat.append(t)
        finally:
            rec.paused = False
        return pytree.tree_unflatten(flat, tpl.out_spec)


def _identifier(name: str) -> str:
    s = re.sub(r"\W+", "_", name).strip("_")
    return s if s and not s[0].isdigit() else f"input_{s}"


_TARGETS: dict[Any, Callable[..., Any]] = {}


def _target(func: Any) -> Callable[..., Any]:
    """A named stand-in for ``func`` as node target: the recorded graph is a record, not a program."""
    if isinstance(func, torch._ops.OpOverload):
        return func
    stub = _TARGETS.get(func)
    if stub is None:
        name = _identifier(getattr(func, "__name__", None) or type(func).__name__).strip("_") or "op"

        def stub(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a graph captured by `record` is a record of one run and cannot be called")

        stub.__name__ = stub.__qualname__ = name
        stub.__module__ = "fxenergy.capture.recorded"
        _TARGETS[func] = stub
    return stub


# --------------------------------------------------------------------------------------------------
# training: one joint graph of forward + backward + optimizer update


def _joint_graph(
    gm: torch.fx.GraphModule, flat_inputs: list[Any], optimizer: str
) -> tuple[torch.fx.GraphModule, list[Any], list[torch.Tensor]]:
    """Trace forward, ``autograd.grad`` of the summed outputs, and the optimizer update as one graph.

    Returns the joint graph, its flat inputs, and the persistent tensors among them (parameters,
    buffers, optimizer state), which the graph takes as placeholders.
    """
    params = dict(gm.named_parameters())
    buffers = dict(gm.named_buffers())
    trainable = [k for k, p in params.items() if p.requires_grad]
    state = {k: _optimizer_state(params[k], optimizer) for k in trainable}

    def step(params: dict, buffers: dict, state: dict, inputs: list) -> Any:
        with _reparametrize_module(gm, {**params, **buffers}):
            out = torch.fx.Interpreter(gm).run(*inputs)
        with fx_traceback.annotate({_PHASE: "forward", _MODULE: "(loss)"}):
            loss = _summed_loss([o for o in pytree.tree_leaves(out) if isinstance(o, torch.Tensor) and o.is_floating_point()])
        _hook_backward_seq_nr(loss)
        with fx_traceback.annotate({_PHASE: "backward"}):
            grads = torch.autograd.grad(loss, [params[k] for k in trainable], allow_unused=True)
        _optimizer_update(optimizer, params, dict(zip(trainable, grads)), state,
                          lambda k: fx_traceback.annotate({_PHASE: "optimizer", _MODULE: k.rpartition(".")[0],
                                                           _TYPE: optimizer}))
        return loss

    with fx_traceback.preserve_node_meta():
        joint = make_fx(step)(params, buffers, state, list(flat_inputs))
    _label_joint(joint)
    persistent = pytree.tree_leaves((params, buffers, state))
    return joint, [*persistent, *flat_inputs], persistent


def _adamw_step(p: torch.Tensor, g: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor) -> None:
    """The single-tensor AdamW update of ``torch.optim.AdamW`` (lr 1e-3, betas (0.9, 0.999), wd 0.01)."""
    lr, b1, b2, eps, wd, step = 1e-3, 0.9, 0.999, 1e-8, 1e-2, 1
    p.mul_(1 - lr * wd)
    exp_avg.lerp_(g, 1 - b1)
    exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = (exp_avg_sq.sqrt() / (1 - b2**step) ** 0.5).add_(eps)
    p.addcdiv_(exp_avg, denom, value=-lr / (1 - b1**step))


def _sgd_step(p: torch.Tensor, g: torch.Tensor) -> None:
    """The single-tensor update of ``torch.optim.SGD`` with its defaults (lr 1e-2, no momentum, no weight decay):
    one in-place add per parameter, which CUDA runs as ``torch._foreach_add_(params, grads, alpha=-lr)``."""
    p.add_(g, alpha=-1e-2)


def _sgd_momentum_step(p: torch.Tensor, g: torch.Tensor, momentum_buffer: torch.Tensor) -> None:
    """The single-tensor momentum SGD update of ``torch.optim.SGD(momentum=0.9)`` (lr 1e-2), past its first step."""
    momentum_buffer.mul_(0.9).add_(g)
    p.add_(momentum_buffer, alpha=-1e-2)


_OPTIMIZER_STEPS: dict[str, Callable[..., None]] = {"adamw": _adamw_step, "sgd": _sgd_step,
                                                     "sgd-momentum": _sgd_momentum_step}
# per parameter: exp_avg + exp_avg_sq; none; momentum_buffer
OPTIMIZER_STATE_TENSORS = {"adamw": 2, "sgd": 0, "sgd-momentum": 1}


def _optimizer_state(p: torch.Tensor, optimizer: str) -> list[torch.Tensor]:
    """The optimizer's state tensors for parameter ``p`` (shapes only; what the update reads and writes)."""
    return [torch.empty_like(p) for _ in range(OPTIMIZER_STATE_TENSORS[optimizer])]


def _summed_loss(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The training loss both captures differentiate: the sum of every floating-point output."""
    if not outputs:
        raise TypeError("training mode needs a floating-point output to differentiate")
    loss = outputs[0].sum()
    for o in outputs[1:]:
        loss = loss + o.sum()
    return loss


def _optimizer_update(optimizer: str, params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor | None],
                      state: Mapping[str, list[torch.Tensor]],
                      scope: Callable[[str], contextlib.AbstractContextManager[Any]]) -> None:
    """One optimizer step over every parameter that got a gradient, each inside ``scope(name)`` (which
    labels its ops with the parameter's module)."""
    with torch.no_grad():
        for k, g in grads.items():
            if g is None:
                continue
            with scope(k):
                _OPTIMIZER_STEPS[optimizer](params[k], g, *state[k])


def _hook_backward_seq_nr(loss: torch.Tensor) -> None:
    # Let make_fx stamp each backward node with the sequence number of the forward op it
    # differentiates (the mechanism aot_autograd uses), so backward rows find their module.
    from torch._functorch._aot_autograd.logging_utils import setup_stacktrace_preservation_hooks

    if loss.grad_fn is not None:
        setup_stacktrace_preservation_hooks([loss.grad_fn])


def _label_joint(joint: torch.fx.GraphModule) -> None:
    """Give backward nodes the module stack of the forward node with the same ``seq_nr``."""
    fwd_stack: dict[int, Any] = {}
    for n in joint.graph.nodes:
        custom = n.meta.get("custom") or {}
        phase = custom.get(_PHASE, "forward")
        n.meta[_PHASE] = phase
        for key in (_MODULE, _TYPE):
            if key in custom:
                n.meta[key] = custom[key]
        if phase == "forward" and "seq_nr" in n.meta and n.meta.get("nn_module_stack"):
            fwd_stack.setdefault(n.meta["seq_nr"], n.meta["nn_module_stack"])
        elif phase == "backward" and n.meta.get("seq_nr") in fwd_stack:
            n.meta["nn_module_stack"] = fwd_stack[n.meta["seq_nr"]]


# --------------------------------------------------------------------------------------------------
# shape propagation + dispatch recording


class _NoKey(Exception):
    """An ATen call whose meta output cannot be reused from an earlier identical call."""


_TENSOR_ARG = object()  # marks a tensor's metadata in a call key
_SEQ_ARG = object()  # marks a list or tuple in a call key
_PLAIN_ARG_TYPES = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)


@functools.cache
def _reusable_op(func: torch._ops.OpOverload) -> bool:
    """True for an ATen op whose outputs are fresh tensors fixed by its inputs' metadata: no view or
    alias, no in-place or ``out=`` write, no output shape that depends on tensor data, only tensors
    returned. Its meta output for one argument metadata can stand for every call with the same."""
    schema = func._schema
    tags = set(getattr(func, "tags", ()))
    return (not schema.is_mutable and not func.is_view and bool(schema.returns)
            and all(a.alias_info is None for a in schema.arguments)
            and all(r.alias_info is None and str(r.type) == "Tensor" for r in schema.returns)
            and not tags & {torch.Tag.dynamic_output_shape, torch.Tag.data_dependent_output})


def _arg_key(a: Any) -> Any:
    """A hashable key of one argument: a meta tensor by its metadata, a plain value by type and value."""
    if isinstance(a, torch.Tensor):
        if a.device.type != "meta" or a.layout != torch.strided or a.dtype.is_complex:
            raise _NoKey
        return (_TENSOR_ARG, a.dtype, tuple(a.shape), a.stride(), a.storage_offset())
    if isinstance(a, (list, tuple)):
        return (_SEQ_ARG, type(a), tuple(_arg_key(x) for x in a))
    if isinstance(a, _PLAIN_ARG_TYPES):
        return (type(a), a)  # 1, 1.0 and True hash alike but promote differently
    raise _NoKey


def _meta_call_key(func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    if not _reusable_op(func):
        raise _NoKey
    return (func, tuple(_arg_key(a) for a in args), tuple((k, _arg_key(v)) for k, v in sorted(kwargs.items())))


def _output_layout(out: Any, args: tuple[Any, ...]) -> tuple[bool, tuple[Any, ...]]:
    """``(is_sequence, ((shape, stride, dtype), ...))`` of a fresh meta output, to remake it later."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    layout = []
    for o in outs:
        if (not isinstance(o, torch.Tensor) or o.device.type != "meta" or o.layout != torch.strided
                or o.storage_offset() != 0 or any(o is a for a in args)):
            raise _NoKey
        layout.append((tuple(o.shape), o.stride(), o.dtype))
    return isinstance(out, (tuple, list)), tuple(layout)


class _Recorder(TorchDispatchMode):
    """Records every ATen call made while active, marking which arguments are parameters.

    On meta tensors an op's output is only metadata, yet some meta kernels are long Python
    decompositions (``native_batch_norm``: about 2 ms a call). So, as FakeTensorMode's own dispatch
    cache does, the outputs of an op with no aliasing, mutation or data-dependent shape are remade
    (``empty_strided`` on meta) when the same op was already called, in this capture, with arguments
    of the same metadata and values (:func:`_meta_call_key`); the recorded :class:`OpCall` is the same.
    """

    def __init__(self, persistent: Sequence[torch.Tensor]):
        super().__init__()
        self._keep = list(persistent)  # keep objects alive so their ids stay unique
        self.persistent = {id(t) for t in persistent}
        self.calls: list[OpCall] = []
        self._outputs: dict[Any, tuple[bool, tuple[Any, ...]]] = {}

    def _call(self, func, args, kwargs):  # noqa: ANN001, ANN202
        try:
            key = _meta_call_key(func, args, kwargs)
        except _NoKey:
            return func(*args, **kwargs)
        hit = self._outputs.get(key)
        if hit is not None:
            many, layout = hit
            outs = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype in layout]
            return tuple(outs) if many else outs[0]
        out = func(*args, **kwargs)
        with contextlib.suppress(_NoKey):
            self._outputs[key] = _output_layout(out, args)
        return out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = self._call(func, args, kwargs)
        pidx = tuple(i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and id(a) in self.persistent)
        if pidx and func.is_view and isinstance(out, torch.Tensor):
            self._keep.append(out)  # a view of a weight (e.g. its transpose) is still the weight
            self.persistent.add(id(out))
        spec = pytree.tree_map_only(torch.Tensor, TensorSpec.of, (args, kwargs, out))
        self.calls.append(OpCall(func, spec[0], spec[1], spec[2], pidx))
        return out


class _Propagator(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule, persistent: Sequence[torch.Tensor]):
        super().__init__(gm)
        self.recorder = _Recorder(persistent)

    def run_node(self, n: torch.fx.Node) -> Any:
        self.recorder.calls = []
        try:
            with self.recorder:
                result = super().run_node(n)
        except Exception as e:
            raise RuntimeError(f"at node {n.format_node()}: {_one_line(e)}") from e
        if n.op != "output":
            outputs = tuple(TensorSpec.of(t) for t in pytree.tree_leaves(result) if isinstance(t, torch.Tensor))
            if n.op == "placeholder":  # phase "input": a user input, or a parameter of a joint graph
                is_param = isinstance(result, torch.Tensor) and id(result) in self.recorder.persistent
                trace = NodeTrace("", PARAMETER if is_param else INPUT, "input", (), outputs)
            elif n.op == "get_attr":
                trace = NodeTrace(str(n.target).rpartition(".")[0], PARAMETER, "input", (), outputs)
            else:
                path, mtype = _module_of(n)
                trace = NodeTrace(path, mtype, n.meta.get(_PHASE, "forward"), tuple(self.recorder.calls), outputs)
            put_record(n, TRACE, trace)
        return result


def _propagate(gm: torch.fx.GraphModule, flat_inputs: list[Any], persistent: list[torch.Tensor]) -> tuple[TensorSpec, ...]:
    with torch.set_grad_enabled(False):
        out = _Propagator(gm, persistent).run(*flat_inputs)
    return tuple(TensorSpec.of(t) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor))


def _module_of(n: torch.fx.Node) -> tuple[str, str]:
    if _MODULE in n.meta:
        return n.meta[_MODULE], n.meta.get(_TYPE, "")
    stack = n.meta.get("nn_module_stack")
    if not stack:
        return "", ""
    path, mtype = list(stack.values())[-1]
    name = mtype.__name__ if isinstance(mtype, type) else str(mtype).rsplit(".", 1)[-1]
    return path, name


# --------------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence torch's tracing logs, prints and warnings: a failed attempt is reported by the ladder."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UserInputError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    text = msg[0] if msg else ""
    for line in msg[1:]:  # keep torch's "Calculated ..." style detail lines short
        if len(text) > 160:
            break
        text += " " + line.strip()
    text = text[:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__

