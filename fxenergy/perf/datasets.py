"""Readers of the shared measurement sets the GPU model is fitted and validated on (never shipped).

* ``gpu-kernels-neusight``: per-call fp32 latencies (ms) of linear, bmm, conv, layer norm, softmax and
  elementwise ops on Tesla P4, P100, T4, V100 and A100-PCIE-40GB (no TF32: allow_tf32 off).
* ``gpu-operators-nicolai``: per-operator time and board power of torchvision layers at batch 32 on
  the A30 (tensor cores on and off) and the RTX 2080 Ti; raw logs list the operators in model order.

Each reader returns kernels (:mod:`fxenergy.perf.kernels`), measured seconds and the device name.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fxenergy.datasets import first_group
from fxenergy.perf.kernels import Kernel, conv_kernel, gemm_kernel, memory_kernel, winograd_eligible

__all__ = ["NEUSIGHT_PROFILES", "NICOLAI_PROFILES", "KernelRows", "load_neusight", "load_nicolai_ops", "data_root"]

# NeuSight's GPU names -> fxenergy profile names .
NEUSIGHT_PROFILES = {
    "Tesla_P4": "p4",
    "Tesla_P100-PCIE-16GB": "p100-pcie-16gb",
    "Tesla_T4": "t4",
    "Tesla_V100-PCIE-32GB": "v100-pcie-32gb",
    "NVIDIA_A100-PCIE-40GB": "a100-40gb-pcie",
}
NICOLAI_PROFILES = {"A30": "a30", "A30_no_tc": "a30", "RTX2080TI": "rtx-2080-ti"}
_F32 = torch.float32
_ES = 4


def data_root() -> Path:
    """``../shared/data`` next to the repository (or ``/work/shared/data``)."""
    here = Path(__file__).resolve()
    for base in (*here.parents, Path("/work")):
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path("/work/shared/data")


@dataclass
class KernelRows:
    kernels: list[Kernel]
    seconds: np.ndarray
    device: list[str]  # profile name per row
    op: list[str]  # the measured op (linear, bmm, conv, add, ...)


def _neusight_kernels(op: str, df) -> list[Kernel]:  # noqa: ANN001 - pandas frame
    out: list[Kernel] = []
    if op == "linear":
        for b, m, n, k in df[["B", "M", "N", "K"]].itertuples(index=False):
            out.append(gemm_kernel(1, int(b * m), int(k), int(n), _F32, bias=True))
    elif op == "bmm":
        for b, m, n, k in df[["B", "M", "N", "K"]].itertuples(index=False):
            out.append(gemm_kernel(int(b), int(m), int(k), int(n), _F32))
    elif op == "conv":
        cols = ["B", "Input_Channel", "Output_Channel", "Kernel_Szie", "Input_Size", "Stride", "Padding"]
        for b, ci, co, ks, s, st, p in df[cols].itertuples(index=False):
            so = (s + 2 * p - ks) // st + 1
            out.append(conv_kernel(int(b), int(ci), int(co), int(ks), int(ks), int(so), int(so), int(s), int(s), 1, _F32,
                                   winograd=winograd_eligible((int(ks), int(ks)), int(st))))
    elif op in ("ln", "softmax"):
        for b, h in df[["B", "H"]].itertuples(index=False):
            n = int(b) * int(h)
            out.append(memory_kernel("reduction", int(b), int(h), _F32, 2 * _ES * n, 5 * n, softmax=op == "softmax",
                                     layer_norm=op == "ln"))
    else:
        n_in = 2 if op in ("add", "mul", "div", "pow") else 1
        for b, h in df[["B", "H"]].itertuples(index=False):
            n = int(b) * int(h)
            out.append(memory_kernel("elementwise", int(b), int(h), _F32, (n_in + 1) * _ES * n, n))
    return out


def load_neusight(ops: tuple[str, ...] | None = None, root: Path | None = None) -> KernelRows:
    """Every NeuSight kernel row (or those of ``ops``), latency converted to seconds."""
    import pandas as pd

    base = (root or data_root()) / "gpu-kernels-neusight" / "kernels"
    kernels: list[Kernel] = []
    secs: list[np.ndarray] = []
    devs: list[str] = []
    names: list[str] = []
    for op_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        if ops is not None and op_dir.name not in ops:
            continue
        for f in sorted(op_dir.glob("*.csv")):
            prof = NEUSIGHT_PROFILES.get(f.stem)
            if prof is None:
                continue
            df = pd.read_csv(f)
            df = df[np.isfinite(df["Latency"]) & (df["Latency"] > 0)]
            kernels += _neusight_kernels(op_dir.name, df)
            secs.append(df["Latency"].to_numpy(float) / 1e3)
            devs += [prof] * len(df)
            names += [op_dir.name] * len(df)
    return KernelRows(kernels, np.concatenate(secs) if secs else np.zeros(0), devs, names)


# -- Nicolai operator logs ----------------------------------------------------------------------------------

_CONV_RE = re.compile(r"Conv2d\((\d+), (\d+), kernel_size=\((\d+), (\d+)\), stride=\((\d+), (\d+)\)(.*)\)")


def _tuple_arg(text: str, key: str, default: tuple[int, int]) -> tuple[int, int]:
    m = re.search(key + r"=\((\d+), (\d+)\)", text)
    return (int(m.group(1)), int(m.group(2))) if m else default


def nicolai_kernels(label: str, op_type: str, shape: tuple[int, ...]) -> list[Kernel] | None:
    """The kernels of one Nicolai operator row (forward, batch 32, fp32), or None if not modelled."""
    n = math.prod(shape)
    if op_type == "Conv2d":
        m = _CONV_RE.match(label)
        if m is None or len(shape) != 4:
            return None
        ci, co, kh, kw, sh, sw = (int(m.group(i)) for i in range(1, 7))
        rest = m.group(7)
        ph, pw = _tuple_arg(rest, "padding", (0, 0))
        dh, dw = _tuple_arg(rest, "dilation", (1, 1))
        g = re.search(r"groups=(\d+)", rest)
        groups = int(g.group(1)) if g else 1
        h, w = shape[2], shape[3]
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ho <= 0 or wo <= 0:
            return None
        ks = [conv_kernel(shape[0], ci, co, kh, kw, ho, wo, h, w, groups, _F32,
                          winograd=winograd_eligible((kh, kw), (sh, sw), (dh, dw), groups))]
        if "bias=False" not in rest:
            ks.append(memory_kernel("elementwise", shape[0] * co, ho * wo, _F32, 2 * _ES * shape[0] * co * ho * wo,
                                    shape[0] * co * ho * wo))
        return ks
    if op_type == "Linear":
        fi = int(first_group(r"in_features=(\d+)", label))
        fo = int(first_group(r"out_features=(\d+)", label))
        rows = n // fi
        return [gemm_kernel(1, rows, fo, fi, _F32, bias="bias=True" in label)]
    if op_type in ("BatchNorm2d", "LayerNorm"):
        cols = shape[-1] if op_type == "LayerNorm" else n // shape[1]
        return [memory_kernel("reduction", n // cols, cols, _F32, 2 * _ES * n, 2 * n, layer_norm=op_type == "LayerNorm")]
    if op_type in ("ReLU", "SiLU", "GELU", "Sigmoid", "StochasticDepth"):
        return [memory_kernel("elementwise", n // shape[-1], shape[-1], _F32, 2 * _ES * n, n)]
    if op_type in ("AdaptiveAvgPool2d", "MaxPool2d", "AvgPool2d"):
        hw = shape[2] * shape[3] if len(shape) == 4 else shape[-1]
        return [memory_kernel("reduction", n // hw, hw, _F32, _ES * n * 1.25, n)]
    return None


def load_nicolai_ops(sources: tuple[str, ...] = ("finalbench_all_operations_A30", "finalbench_all_operations_A30_no_tc",
                                                  "finalbench_all_operations_RTX2080TI"), root: Path | None = None):
    """Operator rows of the Nicolai set: a frame with parsed kernels, time (s) and mean board power (W)."""
    import pandas as pd

    df = pd.read_csv((root or data_root()) / "gpu-operators-nicolai" / "operator_measurements.csv")
    df = df[df["source_file"].isin(sources) & (df["kind"] == "operator")].copy()
    kern = []
    for label, op_type, shape in df[["label", "op_type", "input_shape"]].itertuples(index=False):
        try:
            kern.append(nicolai_kernels(str(label), str(op_type), tuple(ast.literal_eval(str(shape)))))
        except (ValueError, SyntaxError, AttributeError):
            kern.append(None)
    df["kernels"] = kern
    df["setting"] = df["source_file"].str.replace("finalbench_all_operations_", "", regex=False)
    df["profile"] = df["setting"].map(lambda s: NICOLAI_PROFILES.get(s, "a30" if "A30" in s else "rtx-2080-ti"))
    return df[df["kernels"].notna()].reset_index(drop=True)

