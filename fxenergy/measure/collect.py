"""``fxenergy collect``: seed 000's data collection (Getzner et al. §2, App. A.1 and A.3) as a feature.

Each configuration ``index`` (0, 1, ...) of a campaign is drawn from its own random generator, seeded
with ``(seed, index)``, so a configuration does not depend on which shard or run draws it: shard
``i/n`` measures the indices ``index % n == i``, and the merged shards hold exactly the rows of one
unsharded run with the same seed (the measured values naturally differ between runs).

Sampling (``--layers``): the layer kind of index ``i`` is ``kinds[i % len(kinds)]`` and its parameters
are drawn uniformly from seed 000's Table 1 ranges where the paper gives them:

============  ===========  ==========  ===========  ========================  =========  ============  =======
kind          batch_size   image_size  kernel_size  in (channels/features)    out        stride        padding
============  ===========  ==========  ===========  ========================  =========  ============  =======
conv2d        1-256        4-224       1-11         1-512                     1-512      1-5           0-3
maxpool2d     1-256        4-224       1-11         1-512 (= out channels)    -          1-5           0-3
linear        1-512        -           -            1-5000                    1-5000     -             -
activations   1-512        -           -            5e4-5e6 (elements/sample) -          -             -
============  ===========  ==========  ===========  ========================  =========  ============  =======

(activations: relu, sigmoid, tanh, softmax.) Kinds beyond the paper, with our ranges:
``grouped-conv2d`` (as conv2d, ``groups`` 2-64 with 1-32 channels per group in and out; depthwise
when both are 1), ``batchnorm2d`` (batch 1-256, image 4-224, channels 1-512), ``layernorm`` (rows
1-512, normalised size 16-8192), ``attention`` (scaled dot-product attention, batch 1-64, heads 1-16,
seq_len 16-1024, head_dim 16-128) and ``embedding`` (1-512 lookups, 1000-100000 rows of 16-4096).
A configuration is invalid (kernel larger than the padded image, pooling padding over half the
kernel) or over the budgets ``max_macs`` / ``max_bytes`` (inputs + weights + outputs, at the
dtype) is drawn again from the same generator: the defaults keep a campaign within a small machine;
``--max-macs 0 --max-bytes 0`` lifts them (the paper's full ranges reach 10 GB activations).

Named models (``--models alexnet,vgg11``; seed 000 A.3): the configurations are the layers of those
models (Conv2d, MaxPool2d, Linear, activations, BatchNorm2d, LayerNorm, Embedding; their shapes
read by running the model on meta tensors at batch 1), layer ``i % L`` with a batch size drawn from
1-256 (the paper's range).

Measurement: the layer alone (random weights, random input) in measurement windows
(:func:`~fxenergy.measure.window.measure_calls`): forward passes (``mode="inference"``, under
``torch.inference_mode``) or forward + backward of the output's sum (``mode="training"``).

Output: a CSV file, one row per configuration, columns :data:`COLUMNS` (documented in
docs/collect.md). Rows are appended one ``write`` at a time and flushed to disk (fsync), so an
interrupted campaign (Ctrl-C, a killed job) leaves a valid file of the rows completed; running the
same command again skips the ``config_id`` already present (a torn last line, from a crash of the
machine, is dropped). ``fxenergy fit layerwise FILE`` reads the file directly (``--target
duration_s`` when no energy meter was readable).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fxenergy.errors import UserInputError
from fxenergy.measure.kinds import ACTIVATIONS, KINDS
from fxenergy.measure.meters import Meter, describe, open_meter
from fxenergy.measure.window import MeasurementFailed, measure_calls

__all__ = ["KINDS", "ACTIVATIONS", "COLUMNS", "CONFIG_COLUMNS", "CollectSpec", "LayerConfig", "sample_config",
           "model_layer_configs", "campaign_configs", "collect", "merge", "parse_shard", "shard_path",
           "submit_slurm"]

SCHEMA = "fxenergy.collect/1"
_LAYER_TYPE = {"conv2d": "Conv2d", "grouped-conv2d": "Conv2d", "maxpool2d": "MaxPool2d", "linear": "Linear",
               "relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "batchnorm2d": "BatchNorm2d",
               "layernorm": "LayerNorm", "attention": "Attention", "embedding": "Embedding"}
FEATURE_COLUMNS = ("batch_size", "image_size", "kernel_size", "in_channels", "out_channels", "stride", "padding",
                   "groups", "input_size", "output_size", "heads", "seq_len", "head_dim", "num_embeddings",
                   "embedding_dim")
CONFIG_COLUMNS = ("config_id", "seed", "index", "source", "layer_type", *FEATURE_COLUMNS, "macs", "mode", "dtype")
MEASURED_COLUMNS = ("device", "threads", "meter", "meter_domains", "calls", "windows", "discarded", "outliers",
                    "window_s", "duration_s", "duration_spread", "energy_j", "energy_spread", "power_w",
                    "fxenergy_version")
COLUMNS = CONFIG_COLUMNS + MEASURED_COLUMNS
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class LayerConfig:
    """One layer to measure: its kind, layer type (as ``fxenergy fit layerwise`` names it) and features."""

    index: int
    kind: str
    source: str  # "random" or "model:NAME:LAYER_PATH"
    features: dict[str, int] = field(default_factory=dict)

    @property
    def layer_type(self) -> str:
        return _LAYER_TYPE[self.kind]

    def macs(self) -> float:
        """MACs in seed 000's convention (Table 3: bias adds one per output; pooling k²·out/2;
        activations, batch norm one per input element); layer norm one per element, attention
        2·B·H·S²·D (QKᵀ and AV), embedding 0 (a gather)."""
        from fxenergy.predictors.layerwise import seed000_macs

        f = {k: float(v) for k, v in self.features.items()}
        if self.kind == "layernorm":
            return f["batch_size"] * f["input_size"]
        if self.kind == "attention":
            return 2 * f["batch_size"] * f["heads"] * f["seq_len"] ** 2 * f["head_dim"]
        if self.kind == "embedding":
            return 0.0
        return float(seed000_macs(self.layer_type, f))


def _out_side(f: dict[str, int]) -> int:
    return math.floor((f["image_size"] + 2 * f["padding"] - f["kernel_size"]) / f["stride"]) + 1


def _tensor_elements(kind: str, f: dict[str, int]) -> int:
    """Elements of input + weights + output of one call (the memory budget's measure)."""
    b = f["batch_size"]
    if kind in ("conv2d", "grouped-conv2d"):
        o = _out_side(f)
        return (b * f["in_channels"] * f["image_size"] ** 2 + f["out_channels"] * f["in_channels"] // f["groups"]
                * f["kernel_size"] ** 2 + b * f["out_channels"] * o * o)
    if kind == "maxpool2d":
        o = _out_side(f)
        return b * f["in_channels"] * (f["image_size"] ** 2 + o * o)
    if kind == "linear":
        return b * f["input_size"] + f["input_size"] * f["output_size"] + b * f["output_size"]
    if kind in ACTIVATIONS or kind == "layernorm":
        return 2 * b * f["input_size"]
    if kind == "batchnorm2d":
        return 2 * b * f["in_channels"] * f["image_size"] ** 2
    if kind == "attention":
        return b * f["heads"] * (4 * f["seq_len"] * f["head_dim"] + f["seq_len"] ** 2)
    if kind == "embedding":
        return f["num_embeddings"] * f["embedding_dim"] + b * (1 + f["embedding_dim"])
    raise KeyError(kind)


def _draw(kind: str, rng: np.random.Generator) -> dict[str, int]:
    def u(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1))

    if kind == "conv2d":
        return {"batch_size": u(1, 256), "image_size": u(4, 224), "kernel_size": u(1, 11), "in_channels": u(1, 512),
                "out_channels": u(1, 512), "stride": u(1, 5), "padding": u(0, 3), "groups": 1}
    if kind == "grouped-conv2d":
        g = u(2, 64)
        return {"batch_size": u(1, 256), "image_size": u(4, 224), "kernel_size": u(1, 11), "in_channels": g * u(1, 32),
                "out_channels": g * u(1, 32), "stride": u(1, 5), "padding": u(0, 3), "groups": g}
    if kind == "maxpool2d":
        return {"batch_size": u(1, 256), "image_size": u(4, 224), "kernel_size": u(1, 11), "in_channels": u(1, 512),
                "stride": u(1, 5), "padding": u(0, 3)}
    if kind == "linear":
        return {"batch_size": u(1, 512), "input_size": u(1, 5000), "output_size": u(1, 5000)}
    if kind in ACTIVATIONS:
        return {"batch_size": u(1, 512), "input_size": u(50_000, 5_000_000)}
    if kind == "batchnorm2d":
        return {"batch_size": u(1, 256), "image_size": u(4, 224), "in_channels": u(1, 512)}
    if kind == "layernorm":
        return {"batch_size": u(1, 512), "input_size": u(16, 8192)}
    if kind == "attention":
        return {"batch_size": u(1, 64), "heads": u(1, 16), "seq_len": u(16, 1024), "head_dim": u(16, 128)}
    if kind == "embedding":
        return {"batch_size": u(1, 512), "num_embeddings": u(1000, 100_000), "embedding_dim": u(16, 4096)}
    raise UserInputError(f"unknown layer kind {kind!r}; choose from: {', '.join(KINDS)}")


def _valid(kind: str, f: dict[str, int]) -> bool:
    if kind in ("conv2d", "grouped-conv2d", "maxpool2d"):
        if f["kernel_size"] > f["image_size"] + 2 * f["padding"]:
            return False
        if kind == "maxpool2d" and f["padding"] > f["kernel_size"] // 2:
            return False  # torch: pad should be at most half of the kernel
    return True


def sample_config(seed: int, index: int, kind: str, *, max_macs: float = 0, max_bytes: float = 0,
                  element_bytes: int = 4, tries: int = 100_000) -> LayerConfig:
    """Configuration ``index`` of kind ``kind`` for campaign ``seed`` (see the module docstring)."""
    rng = np.random.default_rng([seed, index])
    for _ in range(tries):
        f = _draw(kind, rng)
        if not _valid(kind, f):
            continue
        cfg = LayerConfig(index, kind, "random", f)
        if max_macs and cfg.macs() > max_macs:
            continue
        if max_bytes and _tensor_elements(kind, f) * element_bytes > max_bytes:
            continue
        return cfg
    raise UserInputError(f"no {kind} configuration within --max-macs {max_macs:g} and --max-bytes {max_bytes:g} "
                         f"in {tries} draws; raise the budgets")


# --------------------------------------------------------------------------------------------------
# layers of named models (seed 000 A.3)


def model_layer_configs(names: Sequence[str]) -> list[tuple[str, str, dict[str, int]]]:
    """``(kind, "model:NAME:PATH", features at batch 1)`` of every measurable layer of the named models."""
    from fxenergy.models import build_model

    out: list[tuple[str, str, dict[str, int]]] = []
    for name in names:
        built = build_model(name, batch_size=1)
        found: list[tuple[str, str, dict[str, int]]] = []

        def hook(path: str, found: list = found, model_name: str = built.name) -> Callable[..., None]:
            def record(mod: nn.Module, args: tuple, output: Any) -> None:
                x = args[0] if args else None
                if isinstance(x, torch.Tensor):
                    layer = _layer_of_module(mod, x)
                    if layer is not None:
                        found.append((layer[0], f"model:{model_name}:{path}", layer[1]))
            return record

        handles = [m.register_forward_hook(hook(p)) for p, m in built.model.named_modules() if not list(m.children())]
        try:
            with torch.no_grad():
                built.model(*built.args, **built.kwargs)
        finally:
            for h in handles:
                h.remove()
        if not found:
            raise UserInputError(f"model {name}: no layer fxenergy collect can measure")
        out.extend(found)
    return out


def _layer_of_module(mod: nn.Module, x: torch.Tensor) -> tuple[str, dict[str, int]] | None:
    def one(v: Any) -> int:
        return int(v[0] if isinstance(v, (tuple, list)) else v)

    if isinstance(mod, nn.Conv2d) and x.dim() == 4 and isinstance(mod.padding, tuple):
        return ("conv2d" if mod.groups == 1 else "grouped-conv2d",
                {"batch_size": 1, "image_size": x.shape[-1], "kernel_size": one(mod.kernel_size),
                 "in_channels": mod.in_channels, "out_channels": mod.out_channels, "stride": one(mod.stride),
                 "padding": one(mod.padding), "groups": mod.groups})
    if isinstance(mod, nn.MaxPool2d) and x.dim() == 4:
        return ("maxpool2d", {"batch_size": 1, "image_size": x.shape[-1], "kernel_size": one(mod.kernel_size),
                              "in_channels": x.shape[1], "stride": one(mod.stride), "padding": one(mod.padding)})
    if isinstance(mod, nn.Linear):
        return ("linear", {"batch_size": x.numel() // mod.in_features, "input_size": mod.in_features,
                           "output_size": mod.out_features})
    for cls, kind in ((nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.Softmax, "softmax")):
        if isinstance(mod, cls):
            return (kind, {"batch_size": 1, "input_size": x.numel() // max(x.shape[0], 1)})
    if isinstance(mod, nn.BatchNorm2d) and x.dim() == 4:
        return ("batchnorm2d", {"batch_size": 1, "image_size": x.shape[-1], "in_channels": x.shape[1]})
    if isinstance(mod, nn.LayerNorm) and len(mod.normalized_shape) == 1:
        return ("layernorm", {"batch_size": x.numel() // mod.normalized_shape[0], "input_size": mod.normalized_shape[0]})
    if isinstance(mod, nn.Embedding):
        return ("embedding", {"batch_size": x.numel(), "num_embeddings": mod.num_embeddings,
                              "embedding_dim": mod.embedding_dim})
    return None


# --------------------------------------------------------------------------------------------------
# a campaign


@dataclass(frozen=True)
class CollectSpec:
    """Everything that defines a campaign (and, with ``shard``, one shard of it). Picklable: submitit
    sends it to SLURM jobs."""

    output: str
    count: int = 100
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    models: tuple[str, ...] = ()
    shard: tuple[int, int] = (0, 1)
    device: str = "cpu"
    mode: str = "inference"
    dtype: str = "float32"
    window_s: float = 0.5
    repeats: int = 3
    warmup: int = 2
    retries: int = 3
    max_macs: float = 2e9
    max_bytes: float = 256e6
    meter: str = "auto"
    threads: int | None = None


def campaign_configs(spec: CollectSpec) -> Iterator[LayerConfig]:
    """The configurations of ``spec``'s shard, in index order."""
    i, n = spec.shard
    layers = model_layer_configs(spec.models) if spec.models else None
    element = torch.tensor([], dtype=_DTYPES[spec.dtype]).element_size()
    for index in range(i, spec.count, n):
        if layers is not None:
            kind, source, f = layers[index % len(layers)]
            rng = np.random.default_rng([spec.seed, index])
            for _ in range(1000):  # a batch size from the paper's 1-256 that fits the memory budget
                b = int(rng.integers(1, 257))
                feats = {**f, "batch_size": f["batch_size"] * b}
                if not spec.max_bytes or _tensor_elements(kind, feats) * element <= spec.max_bytes:
                    break
            else:
                feats = f
            yield LayerConfig(index, kind, source, feats)
        else:
            yield sample_config(spec.seed, index, spec.kinds[index % len(spec.kinds)], max_macs=spec.max_macs,
                                max_bytes=spec.max_bytes, element_bytes=element)


class _Attention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def build_layer(cfg: LayerConfig, device: torch.device, dtype: torch.dtype, gen: torch.Generator
                ) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The layer (random weights) and a random input for it, on ``device``."""
    f = cfg.features
    b = f["batch_size"]

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device)

    if cfg.kind in ("conv2d", "grouped-conv2d"):
        mod: nn.Module = nn.Conv2d(f["in_channels"], f["out_channels"], f["kernel_size"], f["stride"], f["padding"],
                                   groups=f["groups"])
        xs: tuple[torch.Tensor, ...] = (randn(b, f["in_channels"], f["image_size"], f["image_size"]),)
    elif cfg.kind == "maxpool2d":
        mod = nn.MaxPool2d(f["kernel_size"], f["stride"], f["padding"])
        xs = (randn(b, f["in_channels"], f["image_size"], f["image_size"]),)
    elif cfg.kind == "linear":
        mod, xs = nn.Linear(f["input_size"], f["output_size"]), (randn(b, f["input_size"]),)
    elif cfg.kind in ACTIVATIONS:
        mod = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "softmax": nn.Softmax(dim=-1)}[cfg.kind]
        xs = (randn(b, f["input_size"]),)
    elif cfg.kind == "batchnorm2d":
        mod = nn.BatchNorm2d(f["in_channels"])
        xs = (randn(b, f["in_channels"], f["image_size"], f["image_size"]),)
    elif cfg.kind == "layernorm":
        mod, xs = nn.LayerNorm(f["input_size"]), (randn(b, f["input_size"]),)
    elif cfg.kind == "attention":
        shape = (b, f["heads"], f["seq_len"], f["head_dim"])
        mod, xs = _Attention(), (randn(*shape), randn(*shape), randn(*shape))
    elif cfg.kind == "embedding":
        mod = nn.Embedding(f["num_embeddings"], f["embedding_dim"])
        xs = (torch.randint(0, f["num_embeddings"], (b,), generator=gen).to(device),)
    else:
        raise UserInputError(f"unknown layer kind {cfg.kind!r}")
    return mod.to(device=device, dtype=dtype), xs


def _call(mod: nn.Module, xs: tuple[torch.Tensor, ...], mode: str) -> Callable[[], Any]:
    if mode == "inference":
        mod.eval()

        def forward() -> Any:
            with torch.inference_mode():
                return mod(*xs)
        return forward
    mod.train()
    xs = tuple(x.requires_grad_() if x.is_floating_point() else x for x in xs)

    def step() -> Any:
        mod(*xs).float().sum().backward()
    return step


def _config_row(spec: CollectSpec, cfg: LayerConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"config_id": f"{spec.seed}-{cfg.index}", "seed": spec.seed, "index": cfg.index,
                           "source": cfg.source, "layer_type": cfg.layer_type}
    row.update({k: cfg.features.get(k, "") for k in FEATURE_COLUMNS})
    if cfg.kind in ("conv2d", "grouped-conv2d"):
        row["groups"] = cfg.features["groups"]
    row.update({"macs": int(cfg.macs()), "mode": spec.mode, "dtype": spec.dtype})
    return row


def _line(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if row.get(c) is None else row.get(c, "") for c in COLUMNS])
    return buf.getvalue()


def _g(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def shard_path(output: str | os.PathLike[str], shard: tuple[int, int]) -> Path:
    """Where shard ``i/n`` of a campaign writing ``output`` writes (``out.csv`` -> ``out.shard0of2.csv``)."""
    p = Path(output)
    return p if shard[1] == 1 else p.with_name(f"{p.stem}.shard{shard[0]}of{shard[1]}{p.suffix or '.csv'}")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserInputError(f"--shard takes i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserInputError(f"--shard {text}: need 0 <= i < n")
    return i, n


def _open_for_append(path: Path) -> set[str]:
    """Create ``path`` with the header, or check its header and return the config_ids it holds
    (dropping a torn last line)."""
    header = ",".join(COLUMNS) + "\n"
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            f.write(header)
            f.flush()
            os.fsync(f.fileno())
        return set()
    data = path.read_bytes()
    if not data.endswith(b"\n"):  # a torn last row: keep what ends with a newline
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
        data = data[: data.rfind(b"\n") + 1]
    text = data.decode("utf-8")
    if not text.startswith(header):
        raise UserInputError(f"{path} exists with other columns than a {SCHEMA} table; choose another --output")
    return {r["config_id"] for r in csv.DictReader(io.StringIO(text))}


def validate(spec: CollectSpec) -> None:
    """One-line errors for bad options or an output file of another table, before anything runs."""
    if spec.mode not in ("inference", "training"):
        raise UserInputError(f"mode must be inference or training, got {spec.mode!r}")
    if spec.dtype not in _DTYPES:
        raise UserInputError(f"dtype must be one of {', '.join(_DTYPES)}, got {spec.dtype!r}")
    if not spec.kinds or (unknown := [k for k in spec.kinds if k not in KINDS]):
        raise UserInputError(f"unknown layer kind {(unknown or [''])[0]!r}; choose from: {', '.join(KINDS)}")
    try:
        dev = torch.device(spec.device)
    except RuntimeError:
        raise UserInputError(f"unknown device {spec.device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device {spec.device}: no CUDA device is available here")
    i, n = spec.shard
    if not (n >= 1 and 0 <= i < n):
        raise UserInputError(f"shard {i}/{n}: need 0 <= i < n")
    path = shard_path(spec.output, spec.shard)
    if path.is_dir():
        raise UserInputError(f"cannot write {path}: it is a directory")
    if path.exists() and path.stat().st_size:
        with path.open(encoding="utf-8") as f:
            if f.readline() != ",".join(COLUMNS) + "\n":
                raise UserInputError(f"{path} exists with other columns than a {SCHEMA} table; choose another --output")


def collect(spec: CollectSpec, *, progress: Callable[[int, int, str], None] | None = None,
            warn: Callable[[str], None] | None = None, meter: Meter | None = None) -> dict[str, Any]:
    """Measure ``spec``'s shard, appending to its file; returns a summary (rows written, skipped, failed,
    the meter line). Interrupting it keeps every completed row."""
    from fxenergy import __version__

    validate(spec)
    path = shard_path(spec.output, spec.shard)
    done = _open_for_append(path)
    configs = list(campaign_configs(spec))
    todo = [c for c in configs if f"{spec.seed}-{c.index}" not in done]
    device = torch.device(spec.device)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    meter = meter or open_meter(spec.device, kind=spec.meter)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    dtype = _DTYPES[spec.dtype]
    written, failed = 0, []
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for k, cfg in enumerate(todo):
            if progress:
                progress(k, len(todo), f"{cfg.layer_type} #{cfg.index}")
            gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + cfg.index)
            try:
                mod, xs = build_layer(cfg, device, dtype, gen)
                m = measure_calls(_call(mod, xs, spec.mode), meter=meter, min_window_s=spec.window_s,
                                  repeats=spec.repeats, warmup=spec.warmup, retries=spec.retries, sync=sync)
            except (MeasurementFailed, RuntimeError) as e:  # RuntimeError: out of memory and the like
                failed.append(f"{spec.seed}-{cfg.index}")
                if warn:
                    warn(f"config {spec.seed}-{cfg.index} ({cfg.layer_type}) not written: {str(e).splitlines()[0]}")
                continue
            row = _config_row(spec, cfg)
            row.update({"device": spec.device, "threads": torch.get_num_threads(), "meter": m.meter,
                        "meter_domains": "+".join(m.domains), "calls": m.calls, "windows": len(m.windows),
                        "discarded": m.discarded, "outliers": m.outliers, "window_s": spec.window_s,
                        "duration_s": _g(m.duration_s), "duration_spread": _g(m.duration_spread),
                        "energy_j": _g(m.energy_j), "energy_spread": _g(m.energy_spread), "power_w": _g(m.power_w),
                        "fxenergy_version": __version__})
            os.write(fd, _line(row).encode("utf-8"))  # one write per row: an interrupt lands between rows
            os.fsync(fd)
            written += 1
            del mod, xs
    finally:
        os.close(fd)
        meter.close()
    if progress:
        progress(len(todo), len(todo), "done")
    return {"path": str(path), "written": written, "skipped": len(configs) - len(todo), "failed": failed,
            "meter": describe(meter), "configs": len(configs)}


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a collect file (strings), checking its header."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UserInputError(f"cannot read {p}: {e.strerror}") from None
    if not text.startswith(",".join(COLUMNS) + "\n"):
        raise UserInputError(f"{p} is not a {SCHEMA} table (its header differs)")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def merge(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]) -> dict[str, Any]:
    """Join shard files into one table sorted by (seed, index); a config_id in two files is kept once
    (the first file's row) and counted."""
    from fxenergy._files import write_atomic

    if not inputs:
        raise UserInputError("collect merge needs shard files to join")
    rows: dict[str, dict[str, str]] = {}
    dup = 0
    for p in inputs:
        for r in read_rows(p):
            if r["config_id"] in rows:
                dup += 1
                continue
            rows[r["config_id"]] = r
    ordered = sorted(rows.values(), key=lambda r: (int(r["seed"]), int(r["index"])))
    text = ",".join(COLUMNS) + "\n" + "".join(_line(r) for r in ordered)
    write_atomic(output, text)
    return {"rows": len(ordered), "duplicates": dup, "files": len(inputs)}


def submit_slurm(spec: CollectSpec, shards: int, *, partition: str | None = None, executor: Any = None,
                 timeout_min: int = 600, folder: str | os.PathLike[str] | None = None) -> list[Any]:
    """Submit ``shards`` shards of ``spec`` as one SLURM job array through submitit (``executor``: any
    submitit executor, e.g. ``submitit.LocalExecutor`` in tests); returns the jobs."""
    try:
        import submitit
    except ImportError:
        raise UserInputError("--slurm needs submitit: pip install 'fxenergy[slurm]'") from None
    if executor is None:
        folder = folder or Path(spec.output).with_suffix("").as_posix() + ".slurm"
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        executor.update_parameters(slurm_partition=partition, timeout_min=timeout_min, cpus_per_task=os.cpu_count() or 1,
                                   slurm_array_parallelism=shards, name="fxenergy-collect")
    specs = [CollectSpec(**{**asdict(spec), "shard": (i, shards)}) for i in range(shards)]
    return executor.map_array(_run_shard, specs)


def _run_shard(spec: CollectSpec) -> dict[str, Any]:
    return collect(spec)
