"""A persistent cache of the hardware-independent :class:`~fxenergy.analysis.Analysis` of catalogue models.

``fxenergy report MODEL`` on a name from ``fxenergy models`` spends most of a cold start importing
transformers/torchvision, building the model on meta tensors and capturing it; none of that depends
on the hardware or the predictor. The analysis it produces is a pure function of the :func:`key`
(model name and its bundled config or catalogue entry, batch size, sequence length, image size,
dtype, mode, optimizer, MAC convention, the example inputs those imply, and the code that computed
it: a hash of every file of the fxenergy package and the versions of Python, torch, transformers and
torchvision). The CLI stores it under :func:`cache_dir` and a later cold ``report`` of the same key
reads it back instead of building and capturing: it needs neither transformers nor torchvision.

What is stored: the graph (every node's name, op, target, arguments and its fxenergy records: trace,
cost, working set), the graph module's parameters and buffers (name, shape, dtype, requires_grad:
they live on the meta device, no values exist), the rows, the model working sets and the analysis
info. Other ``node.meta`` entries (e.g. ``nn_module_stack``) are not stored: no prediction or report
reads them. The format is JSON with tagged values, not pickle: reading a file runs no code and
imports nothing. Node targets are looked up only among ATen operators and a few standard modules
(``operator``, ``builtins``, ``math``, ``torch``, ``torch.nn.functional``); any other function target
(``record``'s stand-ins, ``torchvision.ops.stochastic_depth``...) comes back as a stand-in of the same
name that raises if called (predictions read a target's name only; its costs are in the records). A
value the format does not represent makes the analysis uncached, not wrong. The key is stored in the file and compared on load. A file that is unreadable, corrupt, of
another key or format, or not owned by the current user is never used (one note on stderr) and is
replaced by the next write; writes are atomic (:func:`fxenergy._files.write_atomic`).

User models (``file.py:factory``) and the Python API are never cached: their source is not a key
that can be trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from fxenergy.analysis import Analysis

__all__ = ["FORMAT", "NotCacheable", "cache_dir", "key", "code_hash", "path_for", "load", "store", "dumps", "loads"]

FORMAT = "fxenergy-analysis-cache/1"
_PACKAGE_DIR = Path(__file__).resolve().parent


class NotCacheable(Exception):
    """The analysis holds a value the cache format does not represent; it is simply not stored."""


# ------------------------------------------------------------------------------------------ where, what key
def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$FXENERGY_CACHE_DIR``, else ``$XDG_CACHE_HOME/fxenergy``, else ``~/.cache/fxenergy``."""
    env = os.environ if environ is None else environ
    if env.get("FXENERGY_CACHE_DIR"):
        return Path(env["FXENERGY_CACHE_DIR"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "fxenergy"
    return Path("~/.cache/fxenergy").expanduser()


def code_hash(root: Path = _PACKAGE_DIR) -> str:
    """SHA-256 over every ``.py`` and ``.json`` file of the fxenergy package (paths and contents): any
    change to fxenergy's code or bundled data gives another key."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".json") and p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def key(model: str, *, batch_size: int, seq_len: int, image_size: int | None, dtype: str, mode: str,
        optimizer: str, convention: str) -> dict[str, Any] | None:
    """Everything the analysis of catalogue model ``model`` depends on (None for a model not in the
    catalogue: a ``file.py:factory`` model is never cached). Computed without importing torch."""
    from fxenergy.models import catalog

    try:
        info = catalog.lookup(model)
    except Exception:  # noqa: BLE001 - not a catalogue name: the build reports it
        return None
    if info.family == "torchvision":
        entry: Any = catalog.torchvision_entries()[info.name]
    else:
        entry = catalog.bundled()[info.name]
    # The example inputs are what build_model makes from these: input_ids (batch, seq) [+ decoder_input_ids]
    # for text tasks, one (batch, 3, size, size) image for vision ones; the task is part of the key.
    return {
        "model": info.name, "family": info.family, "task": info.task, "model_entry": entry,
        "batch_size": batch_size, "seq_len": seq_len, "image_size": image_size, "dtype": dtype, "mode": mode,
        "optimizer": optimizer, "convention": convention, "method": "auto",
        "code": code_hash(), "python": sys.version, "torch": _version("torch"),
        "transformers": _version("transformers"), "torchvision": _version("torchvision"),
    }


def path_for(k: Mapping[str, Any], directory: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()[:32]
    return (directory or cache_dir()) / f"analysis-{k['model']}-{digest}.json"


# ------------------------------------------------------------------------------------------ load, store
def load(k: Mapping[str, Any], directory: Path | None = None, *, warn: Callable[[str], None] | None = None
         ) -> Analysis | None:
    """The cached analysis of key ``k``, or None (absent, unreadable, corrupt, another key, another owner:
    the last four with one note through ``warn``)."""
    path = path_for(k, directory)
    try:
        st = path.stat()
    except OSError:
        return None
    note = warn or (lambda msg: print(f"fxenergy: note: {msg}", file=sys.stderr))
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        note(f"analysis cache {path} is not owned by you; not used")
        return None
    try:
        text = path.read_text(encoding="utf-8")
        return loads(text, k)
    except Exception as e:  # noqa: BLE001 - any unusable file is a miss, rewritten by the next store
        note(f"analysis cache {path} not used ({type(e).__name__}: {str(e)[:120]}); it will be rewritten")
        return None


def store(analysis: Analysis, k: Mapping[str, Any], directory: Path | None = None) -> Path | None:
    """Write ``analysis`` under key ``k`` atomically; None when it holds something the format does not
    represent or the directory cannot be written (the report goes on uncached)."""
    from fxenergy._files import write_atomic

    try:
        text = dumps(analysis, k)
    except NotCacheable:
        return None
    try:
        return write_atomic(path_for(k, directory), text)
    except OSError as e:
        print(f"fxenergy: note: analysis cache not written ({e.strerror or e})", file=sys.stderr)
        return None


# ------------------------------------------------------------------------------------------ encoding
_FUNCTION_MODULES = ("operator", "_operator", "builtins", "math", "torch", "torch.nn.functional")
_RECORDED = "fxenergy.capture.recorded"  # record's named stand-in targets (fxenergy.capture._target)


class _NodeRef:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _encoder() -> Callable[[Any], Any]:
    import torch

    from fxenergy.records import NodeCost, NodeTrace, NodeWorkingSet, OpCall, TensorSpec

    OpOverload = torch._ops.OpOverload
    Node = torch.fx.Node
    dtype_t, device_t, layout_t, mformat_t = torch.dtype, torch.device, torch.layout, torch.memory_format

    def enc(x: Any) -> Any:
        t = type(x)
        if x is None or t is bool or t is int or t is str:
            return x
        if t is float:
            return x if x == x and x not in (float("inf"), float("-inf")) else {"f": repr(x)}
        if t is TensorSpec:
            return {"T": [list(x.shape), str(x.dtype).removeprefix("torch.")]}
        if t is tuple:
            return {"t": [enc(v) for v in x]}
        if t is list:
            return [enc(v) for v in x]
        if t is Node:
            return {"n": x.name}
        if t is OpCall:
            kw = x.kwargs
            return {"C": [_op_name(x.op), enc(x.args), _enc_dict(kw, enc), enc(x.out), list(x.param_arg_indices),
                          type(kw) is MappingProxyType]}
        if t is dtype_t:
            return {"dt": str(x).removeprefix("torch.")}
        if t is device_t:
            return {"dv": str(x)}
        if t is layout_t:
            return {"ly": str(x).removeprefix("torch.")}
        if t is mformat_t:
            return {"mf": str(x).removeprefix("torch.")}
        if t is slice:
            return {"sl": [enc(x.start), enc(x.stop), enc(x.step)]}
        if x is Ellipsis:
            return {"E": 0}
        if t is torch.Size:
            return {"S": list(x)}
        if t is dict or t is torch.fx.immutable_collections.immutable_dict:
            return {"d": _enc_dict(x, enc), "i": t is not dict}
        if t is torch.fx.immutable_collections.immutable_list:
            return {"il": [enc(v) for v in x]}
        if t is NodeTrace:
            return {"NT": [x.module_path, x.module_type, x.phase, [enc(c) for c in x.calls], enc(x.outputs)]}
        if t is NodeCost:
            return {"NC": [x.macs, x.flops, x.elementwise_flops, x.bytes_read, x.bytes_written, x.param_bytes_read,
                           x.op, list(x.unmodeled)]}
        if t is NodeWorkingSet:
            return {"NW": [x.activation_in_bytes, x.activation_out_bytes]}
        if isinstance(x, OpOverload):
            return {"op": _op_name(x)}
        raise NotCacheable(f"value of type {t.__qualname__}")

    return enc


def _enc_dict(d: Mapping[str, Any], enc: Callable[[Any], Any]) -> list[list[Any]]:
    out = []
    for k, v in d.items():
        if type(k) is not str:
            raise NotCacheable(f"dict key of type {type(k).__qualname__}")
        out.append([k, enc(v)])
    return out


_OP_NAMES: dict[Any, str] = {}


def _op_name(op: Any) -> str:
    name = _OP_NAMES.get(op)
    if name is None:
        import torch

        if not isinstance(op, torch._ops.OpOverload):
            raise NotCacheable(f"op {op!r}")
        name = _OP_NAMES[op] = f"{op.namespace}::{op._opname}.{op._overloadname}"  # .namespace is slow
    return name


def _target_of(node: torch.fx.Node) -> Any:
    import torch

    target = node.target
    if isinstance(target, str):
        return target
    if isinstance(target, torch._ops.OpOverload):
        return {"op": _op_name(target)}
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if module == _RECORDED and name:
        return {"rec": name}
    name = getattr(target, "__name__", None)
    if name:
        for mod in _FUNCTION_MODULES:  # operator.add, torch.flatten, F.relu...: the same object under its name
            if getattr(sys.modules.get(mod), name, None) is target:
                return {"fn": [mod, name]}
    if callable(target) and isinstance(name, str) and name.isidentifier():
        # Any other function (e.g. torchvision.ops.stochastic_depth, wrapped by symbolic_trace): its
        # call's ATen ops and costs are in the records; the target itself is only ever read for its
        # name (perf.kernels.is_sdpa_target), so a named stand-in is stored, never an import.
        return {"stub": [str(module or ""), str(getattr(target, "__qualname__", name)), name]}
    raise NotCacheable(f"node target {target!r}")


def dumps(analysis: Analysis, k: Mapping[str, Any]) -> str:
    """The analysis as the cache's JSON text (raises :class:`NotCacheable`)."""
    import dataclasses

    import torch

    from fxenergy.records import META_KEY

    enc = _encoder()
    gm = analysis.graph_module
    nodes = []
    for n in gm.graph.nodes:
        records = n.meta.get(META_KEY)
        nodes.append([n.name, n.op, _target_of(n), enc(n.args), enc(n.kwargs),
                      None if records is None else _enc_dict(records, enc)])
    call_modules = sorted({str(n.target) for n in gm.graph.nodes if n.op == "call_module"})
    # The graph module's tensors (all on meta: shapes and dtypes only), each once, in the order
    # GraphModule registered them; a tensor under two names (tied weights) is stored once.
    if call_modules:  # a root module (symbolic_trace): its parameters and buffers as named_* list them
        named = [*gm.named_parameters(remove_duplicate=False), *gm.named_buffers(remove_duplicate=False)]
    else:  # record/export: a dict root of every get_attr target
        named = [(str(n.target), _attr(gm, str(n.target))) for n in gm.graph.nodes if n.op == "get_attr"]
    first: dict[int, int] = {}
    tensors = []
    for i, (name, t) in enumerate(named):
        if not isinstance(t, torch.Tensor):
            raise NotCacheable(f"attribute {name} of type {type(t).__qualname__}")
        alias = first.setdefault(id(t), i)
        tensors.append([name, list(t.shape), str(t.dtype).removeprefix("torch."),
                        isinstance(t, torch.nn.Parameter), bool(t.requires_grad), alias])
    params = [n for n, _ in gm.named_parameters(remove_duplicate=False)]
    buffers = [n for n, _ in gm.named_buffers(remove_duplicate=False)]
    doc = {
        "schema": FORMAT,
        "key": dict(k),
        "class_name": type(gm).__name__,  # GraphModule(class_name=...) names the instance's class
        "lazy": _is_lazy(gm),
        "gm_meta": _enc_dict(gm.meta, enc),
        "nodes": nodes,
        "tensors": tensors,
        "parameters": params,
        "buffers": buffers,
        "call_modules": call_modules,
        "rows": [_row(r) for r in analysis.rows],
        "working_sets": dataclasses.asdict(analysis.working_sets),
        "info": enc(dict(analysis.info)),
    }
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise NotCacheable(str(e)) from None


def _is_lazy(gm: Any) -> bool:
    from torch.fx._lazy_graph_module import _LazyGraphModule

    return isinstance(gm, _LazyGraphModule)


def _row(r: Any) -> list[Any]:
    import dataclasses

    values = [getattr(r, f.name) for f in dataclasses.fields(r)]
    for v in values:
        if not (v is None or type(v) in (int, float, str, tuple)):
            raise NotCacheable(f"row field of type {type(v).__qualname__}")
    return [list(v) if type(v) is tuple else v for v in values]


# ------------------------------------------------------------------------------------------ decoding
def loads(text: str, k: Mapping[str, Any] | None = None) -> Analysis:
    """The analysis in ``text``; raises ``ValueError`` on another format or key, anything else on a
    corrupt file."""
    import torch
    import torch.fx
    from torch.fx._lazy_graph_module import _make_graph_module, _use_lazy_graph_module
    from torch.fx.immutable_collections import immutable_dict, immutable_list

    from fxenergy.analysis import Analysis
    from fxenergy.passes.working_sets import ModelWorkingSets
    from fxenergy.records import META_KEY, NodeCost, NodeTrace, NodeWorkingSet, OpCall, TensorSpec
    from fxenergy.result import Row

    dtypes: dict[str, torch.dtype] = {}

    def dtype(name: str) -> torch.dtype:
        d = dtypes.get(name)
        if d is None:
            d = getattr(torch, name)
            if not isinstance(d, torch.dtype):
                raise ValueError(f"not a dtype: {name!r}")
            dtypes[name] = d
        return d

    ops: dict[str, Any] = {}

    def op(name: str) -> Any:
        o = ops.get(name)
        if o is None:
            ns, _, rest = name.partition("::")
            packet, _, overload = rest.rpartition(".")
            o = getattr(getattr(getattr(torch.ops, ns), packet), overload)
            if not isinstance(o, torch._ops.OpOverload):
                raise ValueError(f"not an operator: {name!r}")
            ops[name] = o
        return o

    specs: dict[tuple[Any, ...], TensorSpec] = {}

    def spec(shape: list[int], dt: str) -> TensorSpec:
        k_ = (dt, *shape)
        s = specs.get(k_)
        if s is None:
            s = specs[k_] = TensorSpec(tuple(shape), dtype(dt))
        return s

    def torch_value(name: str, kind: type) -> Any:  # torch.strided, torch.channels_last...: nothing else
        v = getattr(torch, name)
        if not isinstance(v, kind):
            raise ValueError(f"not a {kind.__name__}: {name!r}")
        return v

    def hook(d: dict[str, Any]) -> Any:
        if len(d) == 1:
            ((tag, v),) = d.items()
            if tag == "T":
                return spec(v[0], v[1])
            if tag == "t":
                return tuple(v)
            if tag == "n":
                return _NodeRef(v)
            if tag == "dt":
                return dtype(v)
            if tag == "dv":
                return torch.device(v)
            if tag == "ly":
                return torch_value(v, torch.layout)
            if tag == "mf":
                return torch_value(v, torch.memory_format)
            if tag == "sl":
                return slice(*v)
            if tag == "f":
                return float(v)
            if tag == "E":
                return Ellipsis
            if tag == "S":
                return torch.Size(v)
            if tag == "il":
                return immutable_list(v)
            if tag == "op":
                return op(v)
            if tag == "C":
                kw = dict(v[2])
                return OpCall(op(v[0]), v[1], MappingProxyType(kw) if v[5] else kw, v[3], tuple(v[4]))
            if tag == "NT":
                return NodeTrace(v[0], v[1], v[2], tuple(v[3]), v[4])
            if tag == "NC":
                return NodeCost(v[0], v[1], v[2], v[3], v[4], v[5], v[6], tuple(v[7]))
            if tag == "NW":
                return NodeWorkingSet(*v)
            if tag == "rec":
                return _recorded(v)
            if tag == "stub":
                return _stand_in(*v)
            if tag == "fn":
                return _function(v[0], v[1])
        if set(d) == {"d", "i"}:
            return (immutable_dict if d["i"] else dict)(d["d"])
        return d  # the document's own objects (key, working sets)

    doc = json.loads(text, object_hook=hook)
    if not isinstance(doc, dict) or doc.get("schema") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    if k is not None and doc.get("key") != json.loads(json.dumps(dict(k))):
        raise ValueError("stored for another key")

    graph = torch.fx.Graph()
    env: dict[str, torch.fx.Node] = {}

    def resolve(x: Any) -> Any:
        t = type(x)
        if t is _NodeRef:
            return env[x.name]
        if t is tuple:
            return tuple(resolve(v) for v in x)
        if t is list:
            return [resolve(v) for v in x]
        if t is immutable_list:
            return immutable_list(resolve(v) for v in x)
        if t is dict or t is immutable_dict:
            return {kk: resolve(v) for kk, v in x.items()}
        if t is slice:
            return slice(resolve(x.start), resolve(x.stop), resolve(x.step))
        return x

    for name, opname, target, args, kwargs, records in doc["nodes"]:
        node = graph.create_node(opname, target, resolve(args), resolve(kwargs), name=name)
        if node.name != name:
            raise ValueError(f"node {name!r} came back as {node.name!r}")
        if records is not None:
            node.meta[META_KEY] = MappingProxyType(dict(records))
        env[name] = node

    made: list[torch.Tensor] = []
    for _, shape, dt, is_param, grad, alias in doc["tensors"]:
        if alias != len(made):
            made.append(made[alias])
            continue
        t = torch.empty(shape, dtype=dtype(dt), device="meta")
        made.append(torch.nn.Parameter(t, requires_grad=grad) if is_param else t.requires_grad_(grad))
    named = [(entry[0], t) for entry, t in zip(doc["tensors"], made)]
    root: Any
    if doc["call_modules"]:
        root = torch.nn.Module()
        for name, t in named:
            _put(root, name, t)
        for mname in doc["call_modules"]:
            _module(root, mname)
    else:
        root = dict(named)
    with _use_lazy_graph_module(bool(doc["lazy"])):
        gm = _make_graph_module(root, graph, class_name=doc["class_name"])
    gm.meta.update(dict(doc["gm_meta"]))
    got_p = [n for n, _ in gm.named_parameters(remove_duplicate=False)]
    got_b = [n for n, _ in gm.named_buffers(remove_duplicate=False)]
    if got_p != doc["parameters"] or got_b != doc["buffers"]:
        raise ValueError("parameters or buffers came back in another order")
    rows = tuple(Row(*_row_values(r)) for r in doc["rows"])
    ws = ModelWorkingSets(**doc["working_sets"])
    return Analysis(gm, rows, ws, MappingProxyType(doc["info"]))


def _row_values(r: list[Any]) -> list[Any]:
    return [tuple(v) if type(v) is list else v for v in r]


def _module(root: torch.nn.Module, path: str) -> torch.nn.Module:
    import torch

    m = root
    for part in path.split("."):
        sub = m._modules.get(part)
        if sub is None:
            sub = torch.nn.Module()
            m.add_module(part, sub)
        m = sub
    return m


def _put(root: torch.nn.Module, name: str, t: torch.Tensor) -> None:
    import torch

    prefix, _, leaf = name.rpartition(".")
    owner = _module(root, prefix) if prefix else root
    if isinstance(t, torch.nn.Parameter):
        owner.register_parameter(leaf, t)
    else:
        owner.register_buffer(leaf, t)


def _attr(gm: torch.nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


_STUBS: dict[tuple[str, str, str], Callable[..., Any]] = {}


def _recorded(name: str) -> Callable[..., Any]:
    """A named stand-in target like the ``record`` capture's (a record of one run cannot be called)."""
    return _stand_in(_RECORDED, name, name)


def _stand_in(module: str, qualname: str, name: str) -> Callable[..., Any]:
    """A function named like a graph's original target, which raises if called: the cached graph is a
    record of costs, not a program (and loading it imports nothing)."""
    key = (module, qualname, name)
    stub = _STUBS.get(key)
    if stub is None:
        parts = [*(module.split(".") if module else []), *qualname.split(".")]
        if not name.isidentifier() or not all(p.isidentifier() for p in parts if p != "<locals>"):
            raise ValueError(f"bad target name {module}:{qualname}")

        def stub(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a graph read from fxenergy's analysis cache is a record of one run and cannot be called")

        stub.__name__, stub.__qualname__, stub.__module__ = name, qualname, module
        _STUBS[key] = stub
    return stub


def _function(module: str, name: str) -> Any:
    if module not in _FUNCTION_MODULES:
        raise ValueError(f"target module {module!r} not allowed")
    import importlib

    return getattr(importlib.import_module(module), name)
