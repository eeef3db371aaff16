"""Write every HEF parameter file of fxenergy/predictors/params/ and print how well each curve fits.

    .venv/bin/python scripts/fit_hef.py            # regenerate all hef-*.json, print the tables
    .venv/bin/python scripts/fit_hef.py --check    # write nothing; exit 1 if a file would change

``hef-seed004-*.json`` hold seed 004's published numbers (verbatim in ``paper``, converted in
``families``/``energy``); ``hef-fitted-*.json`` are fitted on ``--data`` (default ../shared/data):
hef-powerlaw/processed/dataForTransformerHEF.csv + dataForLstmHEF.csv (A100 80GB PCIe, RTX 2080 Ti)
and gpu-operators-nicolai/operator_measurements.csv (A30 and RTX 2080 Ti, ``finalbench_*``
inference rows: torchvision layers at batch 32). The work (FLOPs, bytes) of every measured op comes
from ``fxenergy.annotate`` on that op built on the meta device, so its conventions are the ones the
predictor sees. Each curve's rows are split 70/30 at random (seed ``SPLIT_SEED``, salted by file and
curve); fits use the 70%, and the median absolute percentage error (MdAPE) of DURATION on the 30%
is printed and recorded in ``fitted_on``. Deterministic: same data, same bytes out.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import lsq_linear

import fxenergy
from fxenergy.hardware import load_profile
from fxenergy.passes.ops import family_of
from fxenergy.predictors.hef_law import (
    FAMILIES,
    SCHEMA,
    FamilyLaw,
    HEFEnergy,
    HEFParameters,
    PowerLaw,
    choose_method,
    fit_power_law,
    work_for,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fxenergy" / "predictors" / "params"
SPLIT_SEED = 4
TRAIN_FRACTION = 0.7
AIM = 0.15  # held-out MdAPE of duration we aim for, per family
MIN_ROWS = 10  # fewer rows than this: no curve
UNIT = {"flops": "TFLOP", "bytes": "GB"}
CITE = "Mayaki & Charpenay, Modeling Energy Consumption in Deep Learning Architectures Using Power Laws (ECAI 2025), seed 004"

# ---------------------------------------------------------------------------------------------------
# Seed 004, verbatim (eta_max in percent, k and alpha for c in TFLOP; energy tables as printed).

PAPER = {
    "citation": CITE,
    "table1": {"columns": ["component", "gpu", "eta_max_percent", "k", "alpha"], "rows": [
        ["Theta_mul", "A100", 65.79, 9.25, 0.81], ["Theta_score", "A100", 55.60, 8.24, 0.73],
        ["Theta_proj", "A100", 68.22, 8.50, 0.70], ["Theta_mul", "RTX 2080 Ti", 78.55, 21.83, 0.56],
        ["Theta_score", "RTX 2080 Ti", 71.33, 14.67, 0.57], ["Theta_proj", "RTX 2080 Ti", 81.35, 14.28, 0.47]]},
    "table2": {"columns": ["component", "eta_max_percent", "k", "alpha"], "gpu": "A100", "rows": [
        ["Activations", 0.10, 12164.49, 1.00], ["Cell Update", 0.05, 1986.55, 1.00],
        ["Hidden Update", 0.09, 1780.62, 1.00], ["Gates", 67.48, 8.14, 0.75]]},
    "table3": {"columns": ["operation", "estimate", "std_error", "ci_0.025", "ci_0.975"], "r2": 0.93,
               "units_as_printed": "durations in 10^6 s, energy in J", "rows": [
        ["constant (h)", 23.8962, 0.672, 22.579, 25.214], ["t_Projections", 0.1089, 0.011, 0.087, 0.131],
        ["t_score", 0.4743, 0.006, 0.463, 0.486], ["t_mul", -0.1029, 0.036, -0.173, -0.033]]},
    "table4": {"columns": ["operation", "estimate", "std_error", "ci_0.025", "ci_0.975"], "r2": 0.83,
               "units_as_printed": "durations in 10^6 s, energy in Wh", "rows": [
        ["constant (h)", 0.3601, 0.015, 0.330, 0.391], ["t_gates", -1.2099, 0.196, -1.596, -0.823],
        ["t_update", 4041.5679, 410.269, 3234.431, 4848.705]]},
    "table5": {"columns": ["operation", "estimate", "std_error", "ci_0.025", "ci_0.975"], "r2": 0.907,
               "units_as_printed": "durations in 10^6 s, parameters in millions, FLOPs in 1e12, energy in Wh",
               "rows": [
        ["constant (h)", 0.2228, 0.013, 0.197, 0.248], ["t_gates", -11.5928, 0.436, -12.450, -10.736],
        ["t_update", 2.381e4, 741.694, 2.24e4, 2.53e4], ["Flops", -0.1181, 0.003, -0.123, -0.113],
        ["nb_params", 0.1173, 0.003, 0.112, 0.123]]},
    "table6": {"columns": ["operation", "model_A_flops", "model_B_flops"], "rows": [
        ["QKV Projections", 6.44e10, 3.43e11], ["Final Projection", 4.30e10, 2.29e11],
        ["Attention Scores", 6.74e9, 2.69e10], ["Attention Output", 6.74e9, 2.69e10],
        ["Total Projections", 1.07e11, 5.72e11], ["Total Scores", 6.74e9, 2.69e10],
        ["Total Output", 6.74e9, 2.69e10]]},
    "table7": {"columns": ["operation", "eta_max_percent", "k", "alpha"], "gpu": "A100", "rows": [
        ["Projections", 68.43, 8.14, 0.754], ["Attention Scores", 55.70, 8.43, 0.800],
        ["Attention Output", 67.10, 8.49, 0.794]]},
    "table8": {"columns": ["operation", "model", "tflops", "eta_percent", "t_as_printed_1e6_s"], "rows": [
        ["Projections", "A", 0.1074, 35.45, 19.4], ["Attention Scores", "A", 0.00674, 5.15, 0.76],
        ["Attention Output", "A", 0.00674, 6.68, 0.64], ["Projections", "B", 0.572, 57.65, 63.6],
        ["Attention Scores", "B", 0.0269, 11.98, 1.23], ["Attention Output", "B", 0.0269, 15.37, 1.12]]},
    "eq16": {"E_A_j": 26.30, "E_B_j": 31.28, "v_max_flops_per_s": 156e12, "batch": 64, "seq_len": 320},
}

# What one printed "10^6 s" duration unit really is. The durations behind Table 3 (processed/
# SubsetDataForTransformer_energyModel.csv) are num_layers * c / (v_max * HEF_percent) * 1e6, and
# Table 8's projection rows are c / (v_max * eta_percent) * 1e6: eta in percent (x100) and seconds
# -> microseconds (x1e6) make one unit 1e-4 s, not 1e6 s. So h [J/unit] = h * 1e4 J/s.
PRINTED_DURATION_UNIT_S = 1e-4
NOTE_UNITS = (
    "Table 3 elasticities: the paper prints 'J per 10^6 s', but its durations (Table 8 and the upstream "
    "SubsetDataForTransformer_energyModel.csv) are c / (v_max * eta_percent) * 1e6, so one printed unit is "
    "1e-4 s; elasticity_j_per_s = estimate / 1e-4 s (0.1089 -> 1089 W). With these, Eq. 16 gives E_A = 26.30 J "
    "and E_B = 31.29 J from Table 8's durations * 1e-4 s.")
NOTE_TMUL = (
    "t_mul (attention_output) elasticity is negative and not identifiable: in the upstream data the "
    "Attention Output duration column equals the Attention Scores column * 1e-6 (same FLOPs and HEF), so "
    "a regression cannot separate them; kept as published (-1029 W), not physical.")
NOTE_RNN = (
    "Tables 4/5 (RNN energy, Wh) are not mapped onto families: they are model-level regressions for LSTM/GRU "
    "only, Table 5 adds FLOPs and parameter-count terms that are not durations, and with the same 1e-4 s unit "
    "they convert to -4.4e7 W (gates) and 1.5e11 W (update), which no GPU draws. Kept verbatim in paper.")


def _seed_law(eta_percent: float, k: float, alpha: float) -> PowerLaw:
    return PowerLaw(eta_max=round(eta_percent / 100, 10), k=k, alpha=alpha, unit="TFLOP")


def _rows(table: str, *cols: int) -> dict[str, tuple]:
    return {r[0] if not isinstance(r[1], str) else f"{r[0]}/{r[1]}": tuple(r[c] for c in cols)
            for r in PAPER[table]["rows"]}


T1, T2, T7 = _rows("table1", 2, 3, 4), _rows("table2", 1, 2, 3), _rows("table7", 1, 2, 3)
T3 = {r[0]: r[1] for r in PAPER["table3"]["rows"]}
SEED_ENERGY = HEFEnergy(
    h_j=T3["constant (h)"],
    elasticity_j_per_s={fam: T3[key] / PRINTED_DURATION_UNIT_S for fam, key in
                        (("matmul", "t_Projections"), ("attention_score", "t_score"), ("attention_output", "t_mul"))},
)
# Published curves compared against our fits: (file, curve) -> [(label, law)].
SEED_CURVES = {
    ("hef-fitted-a100", "matmul"): [("T7 proj", _seed_law(*T7["Projections"])), ("T1 proj", _seed_law(*T1["Theta_proj/A100"]))],
    ("hef-fitted-a100", "attention_score"): [("T7 score", _seed_law(*T7["Attention Scores"])),
                                             ("T1 score", _seed_law(*T1["Theta_score/A100"]))],
    ("hef-fitted-a100", "attention_output"): [("T7 output", _seed_law(*T7["Attention Output"])),
                                              ("T1 mul", _seed_law(*T1["Theta_mul/A100"]))],
    ("hef-fitted-a100", "matmul[LSTM gates]"): [("T2 gates", _seed_law(*T2["Gates"]))],
    ("hef-fitted-a100", "elementwise[Activations]"): [("T2 act", _seed_law(*T2["Activations"]))],
    ("hef-fitted-a100", "elementwise[Cell Update]"): [("T2 cell", _seed_law(*T2["Cell Update"]))],
    ("hef-fitted-a100", "elementwise[Hidden Update]"): [("T2 hidden", _seed_law(*T2["Hidden Update"]))],
    ("hef-fitted-rtx2080ti", "matmul"): [("T1 proj", _seed_law(*T1["Theta_proj/RTX 2080 Ti"]))],
    ("hef-fitted-rtx2080ti", "attention_score"): [("T1 score", _seed_law(*T1["Theta_score/RTX 2080 Ti"]))],
    ("hef-fitted-rtx2080ti", "attention_output"): [("T1 mul", _seed_law(*T1["Theta_mul/RTX 2080 Ti"]))],
}


def seed_files() -> dict[str, HEFParameters]:
    a100, rtx = load_profile("a100-80gb-pcie"), load_profile("rtx-2080-ti")
    fam = lambda law: FamilyLaw(law, law.basis)  # noqa: E731
    common = ("eta_max is a fraction (paper: percent); k and alpha are the paper's, for c in TFLOP "
              "(the upstream fits used FLOPs/1e12).",)
    return {
        "hef-seed004-a100": HEFParameters(
            name="hef-seed004-a100", source=f"{CITE}: Tables 7 (transformer ops), 2 (LSTM activations), 3 (energy)",
            device="a100-80gb-pcie", peak_flops=156e12, peak_bytes_per_s=a100.memory_bandwidth_bytes_per_s,
            families={"matmul": fam(_seed_law(*T7["Projections"])),
                      "attention_score": fam(_seed_law(*T7["Attention Scores"])),
                      "attention_output": fam(_seed_law(*T7["Attention Output"])),
                      "bmm": fam(_seed_law(*T7["Attention Output"])),
                      "elementwise": fam(_seed_law(*T2["Activations"]))},
            energy=SEED_ENERGY,
            notes=common + (
                "Curves from Table 7 (the set paired with Table 3 in sec. 5.2); Table 1's A100 rows differ by <1.4 "
                "points of eta_max and are kept in paper.",
                "bmm = Table 7 Attention Output (Theta_mul, the paper's elementary batched matmul). An SDPA node holds "
                "scores and output, two halves of equal FLOPs; the paper's decomposition applies attention_score and "
                "attention_output to c/2 each.",
                "elementwise = Table 2 Activations on the FLOP basis (as the paper fits it); Cell/Hidden Update and "
                "Gates kept in paper.",
                "peak_bytes_per_s is the profile's; no seed curve uses it.",
                NOTE_UNITS, NOTE_TMUL, NOTE_RNN,
                "h_j = 23.8962 J is a per-run constant of a regression over whole training runs.",
            ),
            paper=PAPER,
        ),
        "hef-seed004-rtx2080ti": HEFParameters(
            name="hef-seed004-rtx2080ti", source=f"{CITE}: Table 1 (RTX 2080 Ti rows), Table 3 (energy)",
            device="rtx-2080-ti", peak_flops=13.45e12, peak_bytes_per_s=rtx.memory_bandwidth_bytes_per_s,
            families={"matmul": fam(_seed_law(*T1["Theta_proj/RTX 2080 Ti"])),
                      "attention_score": fam(_seed_law(*T1["Theta_score/RTX 2080 Ti"])),
                      "attention_output": fam(_seed_law(*T1["Theta_mul/RTX 2080 Ti"])),
                      "bmm": fam(_seed_law(*T1["Theta_mul/RTX 2080 Ti"]))},
            energy=SEED_ENERGY,
            notes=common + (
                "Peak 13.45 TFLOP/s fp32 as in the paper (sec. 3) and the upstream transformer HEF data; the upstream "
                "LSTM and energy-model rows of this GPU use 11.34 TFLOP/s.",
                "Table 3 was fitted on BERT/GPT runs of both GPUs (1427 A100, 149 RTX 2080 Ti rows upstream).",
                NOTE_UNITS, NOTE_TMUL,
            ),
            paper={k: PAPER[k] for k in ("citation", "table1", "table3")},
        ),
    }


# ---------------------------------------------------------------------------------------------------
# Measured ops, with their work from fxenergy.annotate


@dataclass(frozen=True, slots=True)
class Op:
    """One measured op: its data label, work on both bases (FLOP, bytes), duration (s), energy (J)."""

    name: str
    flops: float
    bytes: float
    duration_s: float
    energy_j: float | None = None
    tag: str = ""
    source: str = ""  # the data's label when ``name`` is a family (Nicolai: the torchvision layer type)

    def work(self, basis: str) -> float:
        return self.flops if basis == "flops" else self.bytes


class _MatMul(torch.nn.Module):
    def __init__(self, transpose_b: bool):
        super().__init__()
        self.transpose_b = transpose_b

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ (b.transpose(-1, -2) if self.transpose_b else b)


class _LSTMActivations(torch.nn.Module):
    def forward(self, gates: torch.Tensor) -> tuple[torch.Tensor, ...]:
        i, f, g, o = gates.chunk(4, dim=1)
        return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


class _LSTMCellUpdate(torch.nn.Module):
    def forward(self, f: torch.Tensor, c: torch.Tensor, i: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return f * c + i * g


class _LSTMHiddenUpdate(torch.nn.Module):
    def forward(self, o: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return o * torch.tanh(c)


@cache
def measure(module_key: str, *shapes: tuple[int, ...]) -> tuple[float, float, str]:
    """(flops-basis work, bytes moved, dominant ATen op) of one module on meta inputs of ``shapes``."""
    with torch.device("meta"):  # never allocate weights (LSTM gates reach 32000 x 128000)
        module = _module(module_key).eval()
    res = fxenergy.annotate(module, tuple(torch.empty(s, device="meta") for s in shapes))
    t = res.totals
    dominant = max((r for r in res.rows if not r.free), key=lambda r: (r.flops, r.elementwise_flops, r.bytes_moved))
    return work_for("flops", flops=t.flops, elementwise_flops=t.elementwise_flops, bytes_moved=0), t.bytes_moved, dominant.op


def _module(key: str) -> torch.nn.Module:
    """A module from a key: a torch.nn constructor call as in the Nicolai labels, or a named helper."""
    helpers: dict[str, Callable[[], torch.nn.Module]] = {
        "scores": lambda: _MatMul(True), "output": lambda: _MatMul(False), "softmax": lambda: torch.nn.Softmax(-1),
        "act": _LSTMActivations, "cell": _LSTMCellUpdate, "hidden": _LSTMHiddenUpdate,
    }
    if key in helpers:
        return helpers[key]()
    call = ast.parse(key, mode="eval").body  # literals only: never eval a data string
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and hasattr(torch.nn, call.func.id)):
        raise ValueError(f"not a torch.nn constructor call: {key!r}")
    return getattr(torch.nn, call.func.id)(*map(ast.literal_eval, call.args),
                                             **{k.arg: ast.literal_eval(k.value) for k in call.keywords})


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def hef_powerlaw_ops(data: Path, source: str) -> list[Op]:
    """Transformer and LSTM ops of seed 004's data for one GPU (batch 64 in the transformer runs)."""
    ops = []
    for r in _read_csv(data / "hef-powerlaw/processed/dataForTransformerHEF.csv"):
        if r["source"] != source:
            continue
        b, t, d, name = 64, int(r["seq_len"]), int(r["d_model"]), r["operation"]
        key, shapes = {
            "QKV Projections": (f"Linear({d}, {3 * d}, bias=False)", [(b, t, d)]),
            "Final Projection": (f"Linear({d}, {d}, bias=False)", [(b, t, d)]),
            "Attention Scores": ("scores", [(b, t, d), (b, t, d)]),
            "Attention Output": ("output", [(b, t, t), (b, t, d)]),
            # NB: the data's softmax FLOPs (512 * T) are not a work measure; we count bytes of a (64, T, T) softmax
            "attention_softmax": ("softmax", [(b, t, t)]),
        }[name]
        flops, nbytes, _ = measure(key, *map(tuple, shapes))
        if name == "attention_softmax":  # also keep the paper's FLOP column, for the basis comparison
            ops.append(Op(f"{name}/data-flops", float(r["FLOPs"]), nbytes, float(r["elapsed_time_sec"])))
        elif flops != float(r["FLOPs"]):
            raise SystemExit(f"FLOP convention mismatch for {name} T={t} d={d}: {flops} vs {r['FLOPs']}")
        ops.append(Op(name, flops, nbytes, float(r["elapsed_time_sec"])))
    for r in _read_csv(data / "hef-powerlaw/processed/dataForLstmHEF.csv"):
        if r["source"] != source:
            continue
        b, i, h, name = int(r["batch_size"]), int(r["input_size"]), int(r["hidden_size"]), r["component"]
        key, shapes = {
            "compute_gates": (f"Linear({i}, {4 * h}, bias=False)", [(b, i)]),
            "hidden_gates": (f"Linear({h}, {4 * h}, bias=False)", [(b, h)]),
            "Activations": ("act", [(b, 4 * h)]),
            "Cell Update": ("cell", [(b, h)] * 4),
            "Hidden Update": ("hidden", [(b, h)] * 2),
        }[name]
        flops, nbytes, _ = measure(key, *map(tuple, shapes))
        if flops != float(r["FLOPs"]) and name.endswith("gates"):
            raise SystemExit(f"FLOP convention mismatch for {name} B={b} I={i} H={h}: {flops} vs {r['FLOPs']}")
        ops.append(Op(name, flops, nbytes, float(r["elapsed_time_sec"])))
    return ops


def nicolai_ops(data: Path, source_file: str) -> list[Op]:
    """Inference rows of one Nicolai setting, labelled by the family of their dominant ATen op.

    StochasticDepth rows are skipped: in eval mode the layer is the identity (no work to fit).
    """
    ops = []
    for r in _read_csv(data / "gpu-operators-nicolai/operator_measurements.csv"):
        if r["source_file"] != source_file or r["op_type"] == "StochasticDepth":
            continue
        flops, nbytes, op = measure(r["label"], tuple(ast.literal_eval(r["input_shape"])))
        grouped = re.search(r"groups=(\d+)", r["label"])
        tag = "grouped" if grouped and int(grouped[1]) > 1 else ""
        ops.append(Op(family_of(op), flops, nbytes, float(r["time_per_iter_s"]),
                      float(r["energy_per_iter_mJ"]) / 1e3, tag, r["op_type"]))
    return ops


# ---------------------------------------------------------------------------------------------------
# Fitting


@dataclass(frozen=True, slots=True)
class Curve:
    """``family`` fitted on the ops named ``ops`` (untagged rows). ``ship=False``: printed only."""

    key: str
    family: str
    ops: tuple[str, ...]
    basis: str
    ship: bool = True


@dataclass(frozen=True, slots=True)
class Check:
    """A fitted curve evaluated on other rows (all of them are held out from that curve)."""

    key: str
    curve: str
    ops: tuple[str, ...]
    tag: str = ""
    test_only: bool = False  # rows that the curve's own split saw: evaluate on their test part only


@dataclass(frozen=True)
class Setting:
    file: str
    device: str
    peak_dtype: str
    dataset: str
    label: str
    load: Callable[[Path], list[Op]]
    curves: tuple[Curve, ...]
    checks: tuple[Check, ...] = ()
    energy: bool = False
    notes: tuple[str, ...] = ()


def _hef_setting(file: str, device: str, dtype: str, source: str) -> Setting:
    flops = lambda key, fam, *ops, ship=True: Curve(key, fam, ops, "flops", ship)  # noqa: E731
    return Setting(
        file, device, dtype, "hef-powerlaw",
        "processed/dataForTransformerHEF.csv + processed/dataForLstmHEF.csv, rows of " + source,
        lambda data: hef_powerlaw_ops(data, source),
        curves=(
            flops("matmul", "matmul", "QKV Projections", "Final Projection"),
            flops("attention_score", "attention_score", "Attention Scores"),
            flops("attention_output", "attention_output", "Attention Output"),
            flops("bmm", "bmm", "Attention Scores", "Attention Output"),
            Curve("softmax", "softmax", ("attention_softmax",), "bytes"),
            flops("softmax/data-flops", "softmax", "attention_softmax/data-flops", ship=False),
            Curve("elementwise", "elementwise", ("Activations", "Cell Update", "Hidden Update"), "bytes"),
        ),
        checks=(
            Check("matmul[LSTM gates]", "matmul", ("compute_gates", "hidden_gates")),
            *(Check(f"elementwise[{c}]", "elementwise", (c,), test_only=True)
              for c in ("Activations", "Cell Update", "Hidden Update")),
        ),
        notes=(
            "Durations are single upstream timings of one op each (elapsed_time_sec); small ops sit on a "
            "0.2-0.4 ms (A100) floor of timing overhead, which the fitted curves reproduce and real kernels "
            "in a model do not pay: expect over-prediction for ops under ~1 GFLOP / ~10 MB.",
            "Transformer ops at batch 64 (inferred: Final Projection FLOPs = 2*64*T*d^2) with one attention "
            "head spanning d_model; softmax work = bytes of a (64, T, T) fp32 softmax.",
            "LSTM gates (compute_gates, hidden_gates) are not in the matmul fit; fitted_on.checks gives the matmul "
            "curve's error on them.",
        ),
    )


def _nicolai_setting(file: str, device: str, dtype: str, source_file: str, notes: tuple[str, ...]) -> Setting:
    fams = ("convolution", "matmul", "normalization", "elementwise", "reduction", "pooling")
    return Setting(
        file, device, dtype, "gpu-operators-nicolai", f"operator_measurements.csv, source_file == {source_file}",
        lambda data: nicolai_ops(data, source_file),
        curves=tuple(Curve(f, f, (f,), FAMILIES[f].basis) for f in fams),
        checks=(Check("convolution[grouped]", "convolution", ("convolution",), tag="grouped"),),
        energy=True,
        notes=(
            "Work per op from fxenergy.annotate of the torchvision layer (label) on its input shape, batch 32, "
            "inference; the family is that of the layer's dominant ATen op (AdaptiveAvgPool2d to 1x1 -> mean -> "
            "reduction).",
            "Grouped/depthwise convolutions are not in the convolution fit: they are memory-bound kernels ~3x slower "
            "than streaming their bytes, and no FLOP curve fits them (fitted_on.checks).",
            *notes,
        ),
    )


SETTINGS = (
    _hef_setting("hef-fitted-a100", "a100-80gb-pcie", "tf32", "NVIDIA A100 80GB PCIe"),
    _hef_setting("hef-fitted-rtx2080ti", "rtx-2080-ti", "fp32", "NVIDIA GeForce RTX 2080 Ti"),
    _nicolai_setting("hef-fitted-a30", "a30", "tf32", "finalbench_all_operations_A30", (
        "peak_flops is the TF32 tensor-core peak: PyTorch runs fp32 convolutions in TF32 by default; Linear "
        "(fp32 matmul by default) therefore shows eta_max ~0.1 of it.",)),
    _nicolai_setting("hef-fitted-rtx2080ti-ops", "rtx-2080-ti", "fp32", "finalbench_all_operations_RTX2080TI", ()),
)

# Why a shipped curve may miss AIM; the test reads these from the files.
ABOVE_AIM = {
    ("hef-fitted-a30", "convolution"): "TF32 convolution speed depends on channel alignment and cuDNN algorithm, not "
    "on FLOPs alone (c_in = 3 stems run ~3x slower than the curve); dense convs scatter ~20% around any FLOP curve",
    ("hef-fitted-a30", "elementwise"): "looped in-place ReLU on tensors under the 24 MB L2 runs from cache at up to "
    "1.5x DRAM bandwidth, then drops to DRAM speed above ~30 MB: a bump no saturating curve has",
    ("hef-fitted-a30", "reduction"): "37 rows (11 held out), all AdaptiveAvgPool2d to 1x1, most under 50 us and "
    "launch-bound; bytes explain their duration only roughly",
    ("hef-fitted-rtx2080ti-ops", "convolution"): "dense convs scatter with the cuDNN algorithm chosen per shape; "
    "alpha <= 1 (monotone durations) costs ~4 points here (13% with alpha free)",
}


def split(n: int, salt: str) -> np.ndarray:
    """Boolean train mask: a fixed-seed random 70% of ``n`` rows."""
    rng = np.random.default_rng([SPLIT_SEED, zlib.crc32(salt.encode())])
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(TRAIN_FRACTION * n)]] = True
    return mask


def mdape(pred: np.ndarray, true: np.ndarray) -> float:
    """Median absolute percentage error, as a fraction."""
    return float(np.median(np.abs(pred / true - 1.0)))


def _round(law: PowerLaw) -> PowerLaw:
    sig = lambda x: float(f"{x:.6g}")  # noqa: E731
    return PowerLaw(sig(law.eta_max), sig(law.k), sig(law.alpha), law.unit)


@dataclass(frozen=True)
class Fitted:
    curve: Curve
    law: PowerLaw
    method: str
    n_train: int
    n_test: int
    ape: float
    ape_by_method: dict[str, float]
    law_eta: PowerLaw
    seed: list[tuple[str, PowerLaw, float]]
    rows: list[Op]
    train: np.ndarray


def fit_setting(s: Setting, ops: list[Op], peak: dict[str, float]) -> tuple[dict[str, Fitted], dict[str, dict]]:
    fitted, checks = {}, {}
    for c in s.curves:
        rows = [o for o in ops if o.name in c.ops and not o.tag]
        if len(rows) < MIN_ROWS:
            print(f"  {s.file}: {c.key}: {len(rows)} rows < {MIN_ROWS}, no curve")
            continue
        w, t = np.array([o.work(c.basis) for o in rows]), np.array([o.duration_s for o in rows])
        train, pk, unit = split(len(rows), f"{s.file}/{c.key}"), peak[c.basis], UNIT[c.basis]
        laws = {m: _round(fit_power_law(w[train], t[train], pk, unit=unit, method=m)) for m in ("log", "eta")}
        by_method = {m: mdape(law.duration_s(w[~train], pk), t[~train]) for m, law in laws.items()}
        method = choose_method(w[train], t[train], pk, unit=unit)
        law = _round(fit_power_law(w[train], t[train], pk, unit=unit, method=method))
        seed = [(lbl, sl, mdape(sl.duration_s(w[~train], pk), t[~train])) for lbl, sl in SEED_CURVES.get((s.file, c.key), [])]
        fitted[c.key] = Fitted(c, law, method, int(train.sum()), int((~train).sum()),
                               mdape(law.duration_s(w[~train], pk), t[~train]), by_method, laws["eta"], seed, rows, train)
    for ch in s.checks:
        if ch.curve not in fitted:
            continue
        f = fitted[ch.curve]
        if ch.test_only:
            rows = [o for o, tr in zip(f.rows, f.train) if o.name in ch.ops and not tr]
        else:
            rows = [o for o in ops if o.name in ch.ops and o.tag == ch.tag]
        w, t = np.array([o.work(f.curve.basis) for o in rows]), np.array([o.duration_s for o in rows])
        pk = peak[f.curve.basis]
        seed = [(lbl, sl, mdape(sl.duration_s(np.array([o.flops for o in rows]), peak["flops"]), t))
                for lbl, sl in SEED_CURVES.get((s.file, ch.key), [])]
        checks[ch.key] = {"curve": ch.curve, "n": len(rows), "ape": mdape(f.law.duration_s(w, pk), t), "seed": seed}
    return fitted, checks


def fit_energy(fitted: dict[str, Fitted], peak: dict[str, float]) -> tuple[HEFEnergy, dict]:
    """Per family: board power while it runs (W, static included). See the file notes for the model."""
    fams = [k for k, f in fitted.items() if f.curve.ship]
    rows = {k: fitted[k].rows for k in fams}
    split_of = {k: fitted[k].train for k in fams}
    dur = {k: np.array([o.duration_s for o in rows[k]]) for k in fams}
    energy = {k: np.array([o.energy_j for o in rows[k]]) for k in fams}
    util = {k: np.asarray(fitted[k].law.efficiency(np.array([o.work(fitted[k].curve.basis) for o in rows[k]])))
            / fitted[k].law.eta_max for k in fams}
    pred_t = {k: np.asarray(fitted[k].law.duration_s(np.array([o.work(fitted[k].curve.basis) for o in rows[k]]),
                                                     peak[fitted[k].curve.basis])) for k in fams}
    h = {k: float(energy[k][split_of[k]].sum() / dur[k][split_of[k]].sum()) for k in fams}  # time-weighted mean power
    # Static + dynamic: P = P0 + h_dyn[family] * u, u = eta(c)/eta_max, weighted by 1/P (relative errors).
    p_all = np.concatenate([energy[k][split_of[k]] / dur[k][split_of[k]] for k in fams])
    a = np.zeros((p_all.size, 1 + len(fams)))
    a[:, 0], row = 1.0, 0
    for j, k in enumerate(fams):
        n = int(split_of[k].sum())
        a[row:row + n, 1 + j] = util[k][split_of[k]]
        row += n
    sol = lsq_linear(a / p_all[:, None], np.ones_like(p_all), bounds=(0.0, np.inf)).x
    p0, h_dyn = float(sol[0]), {k: float(sol[1 + j]) for j, k in enumerate(fams)}
    stats = {}
    for k in fams:
        te = ~split_of[k]
        stats[k] = {
            "n_train": int(split_of[k].sum()), "n_test": int(te.sum()),
            "mean_power_heldout_median_ape_energy": mdape(h[k] * dur[k][te], energy[k][te]),
            "mean_power_heldout_median_ape_energy_predicted_duration": mdape(h[k] * pred_t[k][te], energy[k][te]),
            "static_dynamic_heldout_median_ape_energy": mdape((p0 + h_dyn[k] * util[k][te]) * dur[k][te], energy[k][te]),
            "static_dynamic_heldout_median_ape_energy_predicted_duration":
                mdape((p0 + h_dyn[k] * util[k][te]) * pred_t[k][te], energy[k][te]),
        }
    sig = lambda x: float(f"{x:.5g}")  # noqa: E731
    return HEFEnergy(0.0, {k: sig(v) for k, v in h.items()}, sig(p0), {k: sig(v) for k, v in h_dyn.items()}), stats


# ---------------------------------------------------------------------------------------------------
# Output


def upstream(data: Path, folder: str) -> str:
    """'owner/repo @commit' of a dataset folder, read from the data README's table."""
    m = re.search(rf"^\| `{re.escape(folder)}/` \| ([^|]+?) \|", (data / "README.md").read_text(), re.M)
    if not m:
        raise SystemExit(f"{data / 'README.md'} does not name the upstream of {folder}/")
    return m[1].strip()


def build(s: Setting, data: Path) -> tuple[HEFParameters, list[list[str]], list[list[str]]]:
    profile = load_profile(s.device)
    peak = {"flops": profile.peak_flops_for(s.peak_dtype), "bytes": profile.memory_bandwidth_bytes_per_s}
    ops = s.load(data)
    fitted, checks = fit_setting(s, ops, peak)
    energy, energy_stats = fit_energy(fitted, peak) if s.energy else (None, None)
    shipped = {k: f for k, f in fitted.items() if f.curve.ship}
    table = []
    for k, f in fitted.items():
        seed = "; ".join(f"{lbl} {_triple(sl)}: {100 * e:.1f}%" for lbl, sl, e in f.seed)
        table.append([s.file.removeprefix("hef-fitted-"), k + ("" if f.curve.ship else " (not shipped)"), f.curve.basis,
                      str(f.n_train), str(f.n_test), f"{f.law.eta_max:.4g}", f"{f.law.k:.4g}", f"{f.law.alpha:.3g}",
                      f.law.unit, f.method, f"{100 * f.ape:.1f}%",
                      f"{100 * f.ape_by_method['log']:.1f}/{100 * f.ape_by_method['eta']:.1f}",
                      _triple(f.law_eta), seed or "-"])
    for k, c in checks.items():
        seed = "; ".join(f"{lbl} {_triple(sl)}: {100 * e:.1f}%" for lbl, sl, e in c["seed"])
        table.append([s.file.removeprefix("hef-fitted-"), f"  check {k}", "", "", str(c["n"]), "", "", "", "", "",
                      f"{100 * c['ape']:.1f}%", "", "", seed or "-"])
    etable = [[s.file.removeprefix("hef-fitted-"), k, str(v["n_train"]), str(v["n_test"]),
               f"{energy.elasticity_j_per_s[k]:.1f}", f"{100 * v['mean_power_heldout_median_ape_energy']:.1f}%",
               f"{100 * v['mean_power_heldout_median_ape_energy_predicted_duration']:.1f}%",
               f"{energy.static_power_w:.1f} + {energy.dynamic_j_per_s[k]:.1f} u",
               f"{100 * v['static_dynamic_heldout_median_ape_energy']:.1f}%",
               f"{100 * v['static_dynamic_heldout_median_ape_energy_predicted_duration']:.1f}%"]
              for k, v in (energy_stats or {}).items()]
    families_meta = {}
    for k, f in shipped.items():
        meta = {"ops": sorted({o.source or o.name for o in f.rows}), "n_train": f.n_train, "n_test": f.n_test, "method": f.method,
                "heldout_median_ape_duration": round(f.ape, 4),
                "heldout_median_ape_duration_by_method": {m: round(v, 4) for m, v in f.ape_by_method.items()},
                "eta_method_fit": f.law_eta.to_dict()}
        if f.seed:
            meta["seed004_heldout_median_ape_duration"] = {lbl: round(e, 4) for lbl, _, e in f.seed}
        if f.ape > AIM:
            reason = ABOVE_AIM.get((s.file, k))
            if reason is None:
                print(f"WARNING {s.file}: {k} misses the {AIM:.0%} aim ({f.ape:.1%}) and has no stated reason")
            meta["above_aim_reason"] = reason
        families_meta[k] = meta
    fitted_on = {
        "dataset": f"{s.dataset}/ ({s.label})", "upstream": upstream(data, s.dataset),
        "split": {"seed": SPLIT_SEED, "train_fraction": TRAIN_FRACTION, "per_curve_salt": "crc32('<file>/<curve>')"},
        "peak_flops_dtype": s.peak_dtype, "aim_heldout_median_ape_duration": AIM, "families": families_meta,
        "checks": {k: {"curve": c["curve"], "n": c["n"], "median_ape_duration": round(c["ape"], 4)} for k, c in checks.items()},
        "skipped": sorted({c.family for c in s.curves if c.ship} - set(shipped)),
        "script": "scripts/fit_hef.py",
    }
    if energy_stats:
        fitted_on["energy"] = {k: {m: (round(x, 4) if isinstance(x, float) else x) for m, x in v.items()}
                               for k, v in energy_stats.items()}
    notes = s.notes
    if energy:
        notes += ("Energy: energy_per_iter_mJ is nvidia-smi board power x time, so static power is inside every "
                  "elasticity: elasticity_j_per_s[f] = sum(E)/sum(t) over the family's training rows (W), to use as "
                  "Eq. 2 with h_j = 0 (no per-run constant is identifiable from per-op loops). static_power_w and "
                  "dynamic_j_per_s give the finer model E = t * (static_power_w + dynamic_j_per_s[f] * eta(c)/eta_max), "
                  "fitted jointly (non-negative least squares on relative power errors); small launch-bound ops draw "
                  "near-static power. Held-out errors of both in fitted_on.energy.",)
    params = HEFParameters(
        name=s.file, source=f"fitted by scripts/fit_hef.py on {s.dataset} ({upstream(data, s.dataset)})",
        device=s.device, peak_flops=peak["flops"], peak_bytes_per_s=peak["bytes"],
        families={k: FamilyLaw(f.law, f.curve.basis) for k, f in shipped.items()}, energy=energy,
        fitted_on=fitted_on, notes=notes,
    )
    return params, table, etable


def _triple(law: PowerLaw) -> str:
    return f"({100 * law.eta_max:.2f}%, {law.k:.4g}, {law.alpha:.3g})"


def render(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(rows[0]), line(["-" * w for w in widths]), *map(line, rows[1:])])


def dump(params: HEFParameters) -> str:
    return json.dumps(params.to_dict(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = ap.parse_args(argv)
    files = dict(seed_files())
    table, etable = [], []
    for s in SETTINGS:
        params, t, e = build(s, args.data)
        files[s.file], table, etable = params, table + t, etable + e
    print(render(["device", "curve", "basis", "n_train", "n_test", "eta_max", "k", "alpha", "unit", "method",
                  "heldout MdAPE", "log/eta %", "eta-method fit", "seed 004 (eta_max, k, alpha): MdAPE on same rows"],
                 table))
    print()
    print(render(["device", "family", "n_train", "n_test", "mean P (W)", "E MdAPE (t meas)", "E MdAPE (t pred)",
                  "static+dyn (W)", "E MdAPE (t meas)", "E MdAPE (t pred)"], etable))
    changed = []
    for name, params in files.items():
        path, text = args.out / f"{name}.json", dump(params)
        HEFParameters.from_dict(json.loads(text), origin=name)  # what we write must load
        if not path.exists() or path.read_text() != text:
            changed.append(name)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    print(f"\n{'would change' if args.check else 'wrote'}: {', '.join(changed) or 'nothing'} (schema {SCHEMA})")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
