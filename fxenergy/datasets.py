"""Readers of the shared measurement data sets (``../shared/data``), importable by scripts, benchmarks
and tests (instead of ``sys.path`` tricks into ``scripts/``).

* Getzner et al. (seed 000): per-layer-type random configurations (``getzner_random``) and whole
  architectures (``getzner_arch_configs``, ``getzner_arch_runs``), energy in joules per forward pass
  (``cpu_energy`` kWh x 3.6e6 / forward passes), features as :data:`fxenergy.predictors.layerwise.FEATURES`.
* Nicolai (ml-operator-profiling): per-operator GPU measurements (``nicolai_rows``) for the devices of
  :data:`NICOLAI_SOURCES`.

The files are read, never copied into this repository; figures derived from them name the dataset.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import re
from pathlib import Path
from typing import Any

from fxenergy.predictors.layerwise import FEATURES, seed000_macs

__all__ = ["KWH", "GETZNER_FILES", "NICOLAI_SOURCES", "default_data", "getzner_random", "parse_project",
           "getzner_arch_configs", "getzner_arch_runs", "parse_operator", "nicolai_rows"]

KWH = 3.6e6
GETZNER_FILES = {"Conv2d": "conv2d.csv", "MaxPool2d": "maxpool2d.csv", "Linear": "linear.csv", "ReLU": "relu.csv",
                 "Sigmoid": "sigmoid.csv", "Tanh": "tanh.csv", "Softmax": "softmax.csv"}
NICOLAI_SOURCES = {"a30": "finalbench_all_operations_A30", "rtx-2080-ti": "finalbench_all_operations_RTX2080TI"}


def default_data() -> Path:
    """``$FXENERGY_DATA``, else ``../shared/data`` next to the repository (never copied into it)."""
    env = os.environ.get("FXENERGY_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def _num(v: str) -> float:
    return float(v)


def getzner_random(data: Path) -> list[dict]:
    """Random-config rows of seed 000, J per forward pass."""
    rows = []
    for layer, fname in GETZNER_FILES.items():
        with open(data / "cpu-layers-getzner" / fname) as fh:
            for r in csv.DictReader(fh):
                row: dict[str, Any] = {"layer_type": layer, "energy_j": _num(r["cpu_energy"]) * KWH / _num(r["forward_passes"])}
                for k in FEATURES[layer]:
                    if k != "macs" and k in r:
                        row[k] = _num(r[k])
                row["macs"] = seed000_macs(layer, row)
                row["macs_data"] = _num(r["macs"])
                rows.append(row)
    return rows


_PROJ = re.compile(r"(\w+):([^,]+)")


def parse_project(name: str) -> dict[str, str]:
    """``module:Conv2d,rep_no:1,...,freeText:architecture=alexnet;layer_idx=0,forward_passes:58``."""
    out = dict(_PROJ.findall(name))
    free = out.pop("freeText", "")
    for part in free.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def getzner_arch_configs(data: Path) -> list[dict]:
    """Seed 000 App. A.3: AlexNet/VGG layer configs measured alone at random batch sizes."""
    rows = []
    for layer, fname in (("Conv2d", "01_conv2d-architecture-configs-raw.csv"), ("Linear", "01_linear-architecture-configs-raw.csv"),
                         ("MaxPool2d", "01_maxpool2d-architecture-configs-raw.csv")):
        with open(data / "cpu-layers-getzner" / "architecture-layers" / fname) as fh:
            for r in csv.DictReader(fh):
                p = parse_project(r["project_name"])
                row: dict[str, Any] = {"layer_type": layer, "energy_j": _num(r["cpu_energy"]) * KWH / _num(p["forward_passes"])}
                for k in FEATURES[layer]:
                    if k != "macs":
                        row[k] = _num(p[k])
                row["macs"] = seed000_macs(layer, row)
                rows.append(row)
    return rows


def getzner_arch_runs(data: Path) -> list[dict]:
    """Per (architecture, batch): measured whole model (layer_idx 0) and per-layer J per pass, rep-averaged."""
    acc: dict[tuple, list[float]] = {}
    for fname in ("00_architectures-layerwise-raw.csv", "01_architectures-layerwise-raw.csv"):
        with open(data / "cpu-layers-getzner" / "architecture-layers" / fname) as fh:
            for r in csv.DictReader(fh):
                p = parse_project(r["project_name"])
                key = (fname[:2], p["architecture"], int(p["batch_size"]), int(p["layer_idx"]), p["module"], int(p["macs"]))
                acc.setdefault(key, []).append(_num(r["cpu_energy"]) * KWH / _num(p["forward_passes"]))
    runs: dict[tuple, dict] = {}
    for (src, arch, b, idx, module, macs), es in sorted(acc.items()):
        run = runs.setdefault((src, arch, b), {"source": src, "architecture": arch, "batch_size": b, "layers": {}})
        if idx == 0:
            run["measured_j"] = sum(es) / len(es)
        else:
            run["layers"][idx] = {"module": module, "macs": macs, "energy_j": sum(es) / len(es)}
    return [r for r in runs.values() if "measured_j" in r]


def _tuple(s: str) -> tuple[int, ...]:
    v = ast.literal_eval(s)
    return tuple(v) if isinstance(v, tuple) else (v,)


def parse_operator(op_type: str, label: str, shape: tuple[int, ...]) -> dict | None:
    """Features of one Nicolai operator row from its printed module and input shape."""
    kw = dict(re.findall(r"(\w+)=(\([^)]*\)|[^,)]+)", label))
    pos = re.findall(r"\((\d+), (\d+)", label)
    b = shape[0]
    if op_type == "Conv2d":
        cin, cout = (int(x) for x in pos[0])
        k = _tuple(kw.get("kernel_size", "1"))
        s = _tuple(kw.get("stride", "1"))
        p = _tuple(kw.get("padding", "0")) if kw.get("padding", "0")[0] in "(0123456789" else (0,)
        g = int(kw.get("groups", 1))
        bias = kw.get("bias", "True").strip() != "False"
        h, w = shape[2], shape[3]
        ho = (h + 2 * p[0] - k[0]) // s[0] + 1
        wo = (w + 2 * p[-1] - k[-1]) // s[-1] + 1
        macs = k[0] * k[-1] * ho * wo * cin // g * cout * b + (ho * wo * cout * b if bias else 0)
        return {"batch_size": b, "image_size": w, "kernel_size": k[-1], "in_channels": cin, "out_channels": cout,
                "stride": s[-1], "padding": p[-1], "groups": g, "macs": macs}
    if op_type == "Linear":
        i = int(first_group(r"in_features=(\d+)", label))
        o = int(first_group(r"out_features=(\d+)", label))
        n = math.prod(shape) // i
        bias = "bias=True" in label
        return {"batch_size": n, "input_size": i, "output_size": o, "macs": n * i * o + (n * o if bias else 0)}
    if op_type in ("BatchNorm2d", "AdaptiveAvgPool2d"):
        row = {"batch_size": b, "in_channels": shape[1], "image_size": shape[-1], "macs": math.prod(shape)}
        if op_type == "AdaptiveAvgPool2d":
            row["output_size"] = _tuple(kw.get("output_size", "1"))[0]
        return row
    if op_type in ("ReLU", "Sigmoid", "Tanh", "Softmax"):
        return {"batch_size": b, "input_size": math.prod(shape) // b, "macs": math.prod(shape)}
    return None


def nicolai_rows(data: Path, source: str) -> list[dict]:
    """Operator rows of one GPU setting, in file order, with ``model`` = index of the model they came from.

    NB: the rows name no model; a model starts at each Conv2d with 3 input channels (the stem), which is
    how the raw logs are ordered (one model after another).
    """
    rows, model = [], -1
    with open(data / "gpu-operators-nicolai" / "operator_measurements.csv") as fh:
        for r in csv.DictReader(fh):
            if r["source_file"] != source or r["kind"] != "operator":
                continue
            if r["op_type"] == "Conv2d" and re.match(r"Conv2d\(3, ", r["label"]):
                model += 1
            shape = _tuple(r["input_shape"])
            f = parse_operator(r["op_type"], r["label"], shape)
            row = {"layer_type": r["op_type"], "model": max(model, 0), "energy_j": _num(r["energy_per_iter_mJ"]) / 1e3}
            if f is not None:
                row.update({k: float(v) for k, v in f.items()})
            rows.append(row)
    return rows


def first_group(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text``; a label without it is malformed data."""
    m = re.search(pattern, text)
    if m is None:
        raise ValueError(f"{pattern!r} not found in {text!r}")
    return m.group(1)
