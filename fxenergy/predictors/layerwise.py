"""Layer-wise regression predictor (seed 000, Getzner et al. 2023): one regressor per layer type.

Each layer of the graph (Conv2d, MaxPool2d, Linear, ReLU, Sigmoid, Tanh, Softmax, and on GPUs
BatchNorm2d, AdaptiveAvgPool2d, ...) is described by its parameters, read from the node's ATen call
shapes (kernel/stride/padding from ``convolution``, in/out sizes from ``addmm``, ...), plus the MAC
count in seed 000's convention (Table 3; bias adds one MAC per output, pooling halves k²·outputs,
activations count one per element) and the batch size. A fitted model per type maps them to the
energy of one forward pass of that layer, in joules; the model energy is the sum over layers.

A layer type without a regressor gets 0 J and is named in the estimate's notes (never silently).

Domain: the fit records, per layer type, the range of every feature in its training rows
(``domain_``). A layer whose batch size or MAC count lies outside that range (beyond
:data:`DOMAIN_SLACK`) is outside what the regressions saw: :meth:`LayerwisePredictor.predict` raises
:class:`OutOfDomainError` naming it, and :func:`fxenergy.annotate` falls back to the ``physical``
model on CPUs (with a note) or refuses elsewhere. Training graphs are refused (rule: seed 000 measured
forward passes only, and no backward rule is fitted; use ``physical``, ``roofline`` or ``hef``).

Every regressor is a chain whose learned state is plain numbers, so it round-trips through JSON:

    features -> input map ("raw", "log" = log1p, "raw+log") -> PolynomialFeatures(degree)
             -> StandardScaler -> linear model (OLS / ridge / lasso) -> target map
             ("minmax" = seed 000's MinMaxScaler on the target, or "log" = fit log energy)

:meth:`LayerwisePredictor.fit` picks, per layer type, the candidate with the highest 5-fold
cross-validated R² on the energy itself (seed 000's criterion). NB: selecting by mean squared *log*
error instead picks log-log models that fit small layers well but miss the large layers that dominate
a whole model's energy (whole-model R² fell from 0.95 to 0.84 in benchmarks/layerwise_accuracy.py).

>>> from fxenergy.predictors.layerwise import LayerwisePredictor
>>> from fxenergy.predictors.interface import load_artifact
>>> p = LayerwisePredictor.from_json(load_artifact("layerwise", "layerwise-xeon-gold-5120"))
>>> p.predict_layer("Linear", {"batch_size": 64, "input_size": 4096, "output_size": 1000}) > 0
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from fxenergy.errors import UserInputError
from fxenergy.passes.ops import layer_type_of
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.predictors.interface import check_artifact, check_fitted, make_artifact
from fxenergy.records import COST, TRACE, OpCall, get_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["OutOfDomainError", "DOMAIN_FEATURES", "DOMAIN_SLACK", "LayerwisePredictor", "LayerRegressor", "CANDIDATES", "layer_of_node", "seed000_macs", "FEATURES"]

DOMAIN_FEATURES = ("batch_size", "macs")
"""Features whose fitted range a predicted layer must lie in."""
DOMAIN_SLACK = 1.25
"""A feature may exceed its fitted range by this factor (either side) before the layer is out of domain."""


class OutOfDomainError(UserInputError):
    """The layer-wise backend was asked about layers (or a mode) its training data does not cover."""


# Features each layer type's regressor may use (a fitted regressor stores the subset it uses).
FEATURES: dict[str, tuple[str, ...]] = {
    "Conv2d": ("batch_size", "image_size", "kernel_size", "in_channels", "out_channels", "stride", "padding", "macs"),
    "MaxPool2d": ("batch_size", "image_size", "kernel_size", "in_channels", "stride", "padding", "macs"),
    "AvgPool2d": ("batch_size", "image_size", "kernel_size", "in_channels", "stride", "padding", "macs"),
    "Linear": ("batch_size", "input_size", "output_size", "macs"),
    "ReLU": ("batch_size", "input_size", "macs"),
    "Sigmoid": ("batch_size", "input_size", "macs"),
    "Tanh": ("batch_size", "input_size", "macs"),
    "Softmax": ("batch_size", "input_size", "macs"),
    "BatchNorm2d": ("batch_size", "image_size", "in_channels", "macs"),
    "AdaptiveAvgPool2d": ("batch_size", "image_size", "in_channels", "output_size", "macs"),
}
# GPU convolutions include grouped (depthwise) ones: ``groups`` joins the features where data has it.
GROUPED_CONV = ("batch_size", "image_size", "kernel_size", "in_channels", "out_channels", "stride", "padding",
                "groups", "macs")



def _pair(v: Any, default: int) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return default, default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return int(v), int(v)


def seed000_macs(layer_type: str, f: Mapping[str, float]) -> float:
    """MACs of one layer in seed 000's convention (Table 3; the ``macs`` column of its data).

    Conv: k²·cin/groups·cout·Hout·Wout·B (+ cout·Hout·Wout·B with bias); Linear: B·in·out (+ B·out with
    bias); max/avg pooling: k²·Hout·Wout·c·B / 2; activations, batch norm, adaptive pooling: one per
    input element. ``f`` may give ``out_size`` (Hout = Wout); else it is computed from the parameters.
    """
    b = f["batch_size"]
    if layer_type == "Conv2d":
        k, cin, cout, g = f["kernel_size"], f["in_channels"], f["out_channels"], f.get("groups", 1)
        out = f.get("out_size") or math.floor((f["image_size"] + 2 * f["padding"] - k) / f["stride"]) + 1
        bias = out * out * cout * b if f.get("bias", 1) else 0
        return k * k * out * out * cin / g * cout * b + bias
    if layer_type in ("MaxPool2d", "AvgPool2d"):
        k = f["kernel_size"]
        out = f.get("out_size") or math.floor((f["image_size"] + 2 * f["padding"] - k) / f["stride"]) + 1
        return k * k * out * out * f["in_channels"] * b / 2
    if layer_type == "Linear":
        return b * f["input_size"] * f["output_size"] + (b * f["output_size"] if f.get("bias", 1) else 0)
    if layer_type in ("BatchNorm2d", "AdaptiveAvgPool2d"):
        return b * f["in_channels"] * f["image_size"] ** 2
    return b * f["input_size"]


# --------------------------------------------------------------------------------------------------
# layer parameters from the graph


def _main_call(trace: Any) -> tuple[str, OpCall] | None:
    for call in trace.calls:
        t = layer_type_of(call.name)  # the op registry
        if t is not None:
            return t, call
    return None


def layer_of_node(node: torch.fx.Node) -> tuple[str, dict[str, float]] | None:
    """``(layer type, features)`` of a forward node, or ``None`` when it is no layer we know.

    The type is the node's ``module_type`` when that is a known layer, else inferred from its ATen call
    (``F.relu`` inside a block is a ReLU layer). Features come from the call's tensor shapes and args.
    """
    trace = get_record(node, TRACE)
    if trace is None:
        return None
    found = _main_call(trace)
    if found is None:
        return None
    layer, call = found  # the main ATen call decides the layer type, not the module class
    a = call.args
    f: dict[str, Any] = {}
    x: Any = a[0] if layer != "Linear" else None
    if layer == "Conv2d":
        x, w, bias = a[0], a[1], a[2] if len(a) > 2 else None
        stride, pad = _pair(a[3] if len(a) > 3 else 1, 1), _pair(a[4] if len(a) > 4 else 0, 0)
        groups = int(a[8]) if len(a) > 8 else 1
        out = call.out.shape if hasattr(call.out, "shape") else None
        f = {"batch_size": x.shape[0], "image_size": x.shape[-1], "kernel_size": w.shape[-1], "in_channels": x.shape[1],
             "out_channels": w.shape[0], "stride": stride[0], "padding": pad[0], "groups": groups,
             "bias": int(bias is not None), "out_size": out[-1] if out else None}
        if out and len(out) == 4:
            # exact MACs for non-square shapes: k_h·k_w·Hout·Wout·cin/g·cout·B (+ bias)
            macs = w.shape[-1] * w.shape[-2] * out[2] * out[3] * w.shape[1] * w.shape[0] * x.shape[0]
            f["macs"] = macs + (out[2] * out[3] * w.shape[0] * x.shape[0] if bias is not None else 0)
    elif layer in ("MaxPool2d", "AvgPool2d"):
        k = _pair(a[1], 1)
        stride = _pair(a[2] if len(a) > 2 else None, k[0])
        pad = _pair(a[3] if len(a) > 3 else 0, 0)
        f = {"batch_size": x.shape[0], "image_size": x.shape[-1], "kernel_size": k[0], "in_channels": x.shape[1],
             "stride": stride[0], "padding": pad[0]}
    elif layer == "Linear":
        if call.name == "addmm":
            inp, w = a[1], a[2]
            bias = 1
        else:
            inp, w = a[0], a[1]
            bias = int(len(a) > 2 and a[2] is not None) if call.name == "linear" else 0
        in_f = inp.shape[-1]
        out_f = w.shape[0] if call.name == "linear" else w.shape[-1]
        f = {"batch_size": inp.numel // in_f, "input_size": in_f, "output_size": out_f, "bias": bias}
    elif layer in ("BatchNorm2d", "AdaptiveAvgPool2d"):
        f = {"batch_size": x.shape[0], "in_channels": x.shape[1], "image_size": x.shape[-1]}
        if layer == "AdaptiveAvgPool2d":
            f["output_size"] = _pair(a[1], 1)[0]
    else:  # activations
        f = {"batch_size": x.shape[0], "input_size": x.numel // max(x.shape[0], 1)}
    f = {k: float(v) for k, v in f.items() if v is not None}
    f.setdefault("macs", float(seed000_macs(layer, f)))
    return layer, f


# --------------------------------------------------------------------------------------------------
# one regressor: JSON-serialisable chain


@dataclass(frozen=True)
class Candidate:
    """A model family tried by cross-validation (hyper-parameters only)."""

    name: str
    features: str  # "all" | "macs" | "params" (all but macs)
    input_map: str  # "raw" | "log" | "raw+log"
    degree: int
    interaction_only: bool
    estimator: str  # "ols" | "ridge" | "lasso"
    alpha: float
    target: str  # "minmax" | "log"


CANDIDATES: tuple[Candidate, ...] = (
    # seed 000's choices (Table 2 / poster): linear on MACs; polynomial d=2 on all features; MinMax target
    Candidate("seed000-macs-linear", "macs", "raw", 1, False, "ols", 0.0, "minmax"),
    Candidate("seed000-poly2", "all", "raw+log", 2, False, "ols", 0.0, "minmax"),
    Candidate("seed000-params-poly2-interact", "params", "raw", 2, True, "ols", 0.0, "minmax"),
    # log-log models: energy as a product of powers of the parameters; extrapolate to real layers
    Candidate("loglog-linear", "all", "log", 1, False, "ols", 0.0, "log"),
    Candidate("loglog-poly2-ridge", "all", "log", 2, False, "ridge", 1.0, "log"),
    Candidate("loglog-macs-poly2", "macs", "log", 2, False, "ols", 0.0, "log"),
)


def _input_map(X: np.ndarray, kind: str) -> np.ndarray:
    if kind == "raw":
        return X
    if kind == "log":
        return np.log1p(X)
    if kind == "raw+log":
        return np.hstack([X, np.log1p(X)])
    raise UserInputError(f"unknown input map {kind!r}")


@dataclass(frozen=True)
class LayerRegressor:
    """A fitted chain (see the module docstring); ``predict`` returns joules per forward pass."""

    features: tuple[str, ...]
    input_map: str
    powers: np.ndarray  # (n_out, n_in) integer exponents of PolynomialFeatures
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    target: str
    target_min: float = 0.0
    target_scale: float = 1.0
    candidate: str = ""

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = _input_map(np.asarray(X, dtype=float), self.input_map)
        P = np.prod(Z[:, None, :] ** self.powers[None, :, :], axis=2)
        y = ((P - self.mean) / self.scale) @ self.coef + self.intercept
        if self.target == "log":
            return np.exp(y)
        return np.maximum((y - self.target_min) / self.target_scale, 0.0)  # MinMaxScaler inverse; never < 0

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "input_map": self.input_map, "powers": self.powers.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "target": self.target, "target_min": self.target_min,
                "target_scale": self.target_scale, "candidate": self.candidate}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerRegressor:
        return cls(tuple(d["features"]), d["input_map"], np.asarray(d["powers"], dtype=float),
                   np.asarray(d["mean"], dtype=float), np.asarray(d["scale"], dtype=float),
                   np.asarray(d["coef"], dtype=float), float(d["intercept"]), d["target"],
                   float(d.get("target_min", 0.0)), float(d.get("target_scale", 1.0)), d.get("candidate", ""))


def _sk_pipeline(c: Candidate) -> Any:
    """The scikit-learn estimator a candidate fits with (its state is then copied to JSON)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Lasso, LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, PolynomialFeatures, StandardScaler

    est = {"ols": lambda: LinearRegression(), "ridge": lambda: Ridge(alpha=c.alpha),
           "lasso": lambda: Lasso(alpha=c.alpha, max_iter=20000)}[c.estimator]()
    pipe = Pipeline([
        ("input", FunctionTransformer(_input_map, kw_args={"kind": c.input_map})),
        ("poly", PolynomialFeatures(degree=c.degree, interaction_only=c.interaction_only)),
        ("scale", StandardScaler()),
        ("reg", est),
    ])
    if c.target == "log":
        return TransformedTargetRegressor(regressor=pipe, func=np.log, inverse_func=np.exp, check_inverse=False)
    return TransformedTargetRegressor(regressor=pipe, transformer=MinMaxScaler())


def _feature_names(layer: str, c: Candidate, available: Sequence[str]) -> tuple[str, ...]:
    names = [n for n in available]
    if c.features == "macs":
        return ("macs",)
    if c.features == "params":
        return tuple(n for n in names if n != "macs")
    return tuple(names)


def _export(c: Candidate, names: tuple[str, ...], model: Any) -> LayerRegressor:
    pipe = model.regressor_
    poly, scale, reg = pipe.named_steps["poly"], pipe.named_steps["scale"], pipe.named_steps["reg"]
    tmin, tscale = 0.0, 1.0
    if c.target == "minmax":
        tmin, tscale = float(model.transformer_.min_[0]), float(model.transformer_.scale_[0])
    return LayerRegressor(names, c.input_map, poly.powers_.astype(float), scale.mean_.copy(), scale.scale_.copy(),
                          np.ravel(reg.coef_).astype(float), float(np.ravel(reg.intercept_)[0]) if np.ndim(reg.intercept_) else float(reg.intercept_),
                          c.target, tmin, tscale, c.name)


def fit_candidate(c: Candidate, names: tuple[str, ...], X: np.ndarray, y: np.ndarray) -> tuple[LayerRegressor, Any]:
    """Fit one candidate with scikit-learn; return the JSON-able copy and the sklearn model."""
    model = _sk_pipeline(c).fit(X, y)
    return _export(c, names, model), model


def _neg_r2(y: np.ndarray, p: np.ndarray) -> float:
    """1 - R² (lower is better), so that the selection minimises like a loss."""
    return float(((y - p) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300))


def select_regressor(layer: str, rows: Sequence[Mapping[str, float]], y: np.ndarray, available: Sequence[str],
                     *, candidates: Sequence[Candidate] = CANDIDATES, folds: int = 5, seed: int = 0
                     ) -> tuple[LayerRegressor, dict[str, float]]:
    """Pick the candidate with the highest k-fold cross-validated R² (lowest 1 - R²); refit on all rows."""
    from sklearn.model_selection import KFold

    scores: dict[str, float] = {}
    kf = KFold(n_splits=min(folds, len(y)), shuffle=True, random_state=seed)
    for c in candidates:
        names = _feature_names(layer, c, available)
        X = np.array([[r[n] for n in names] for r in rows], dtype=float)
        errs = []
        for tr, te in kf.split(X):
            reg, _ = fit_candidate(c, names, X[tr], y[tr])
            errs.append(_neg_r2(y[te], reg.predict(X[te])))
        scores[c.name] = float(np.mean(errs))
    best = min(candidates, key=lambda c: (scores[c.name], c.name))
    names = _feature_names(layer, best, available)
    X = np.array([[r[n] for n in names] for r in rows], dtype=float)
    reg, _ = fit_candidate(best, names, X, y)
    return reg, scores


# --------------------------------------------------------------------------------------------------
# the backend


@register_predictor("layerwise")
class LayerwisePredictor:
    """Seed 000 layer-wise regression. Hyper-parameters: ``candidates`` (names from :data:`CANDIDATES`,
    default all), ``folds`` (cross-validation folds), ``seed``, ``min_rows`` (fewer rows: type unmodeled),
    ``hardware`` (profile name recorded in the artifact).

    ``fit(dataset)``: ``dataset`` is an iterable of mappings (or a pandas DataFrame) with columns
    ``layer_type``, ``energy_j`` (J per forward pass of the layer) and the layer's features
    (:data:`FEATURES`; ``macs`` is computed by :func:`seed000_macs` when absent).
    """

    requires: ClassVar[tuple[str, ...]] = (TRACE,)

    def __init__(self, *, candidates: Sequence[str] | None = None, folds: int = 5, seed: int = 0,
                 min_rows: int = 10, hardware: str | None = None, fitted_on: Any = None, target: str = "energy_j"):
        if target not in ("energy_j", "duration_s"):
            raise UserInputError(f"layerwise target must be energy_j or duration_s, got {target!r}")
        self.target = target  # duration_s: fitted on time-only measurements; predict_layer gives seconds
        self.candidates = candidates
        self.folds = folds
        self.seed = seed
        self.min_rows = min_rows
        self.hardware = hardware
        self.fitted_on = fitted_on

    # -- learning ------------------------------------------------------------------------------
    def fit(self, dataset: Any) -> LayerwisePredictor:
        rows = _records(dataset)
        by_type: dict[str, list[dict[str, float]]] = {}
        for r in rows:
            by_type.setdefault(str(r["layer_type"]), []).append(r)
        cands = CANDIDATES if self.candidates is None else tuple(c for c in CANDIDATES if c.name in self.candidates)
        if not cands:
            raise UserInputError(f"no known candidate among {self.candidates}; known: {[c.name for c in CANDIDATES]}")
        regs: dict[str, LayerRegressor] = {}
        cv: dict[str, dict[str, float]] = {}
        for layer in sorted(by_type):
            rs = by_type[layer]
            if layer not in FEATURES or len(rs) < self.min_rows:
                continue
            for r in rs:
                if "macs" not in r or r["macs"] is None or (isinstance(r["macs"], float) and math.isnan(r["macs"])):
                    r["macs"] = seed000_macs(layer, r)
            base = FEATURES[layer]
            if layer == "Conv2d" and any(float(r.get("groups", 1)) != 1 for r in rs):
                base = GROUPED_CONV
            available = [n for n in base if all(n in r and r[n] is not None for r in rs)]
            y = np.array([float(r[self.target]) for r in rs])
            if (y <= 0).any():
                raise UserInputError(f"{layer}: {self.target} must be positive (got {y.min()})")
            regs[layer], cv[layer] = select_regressor(layer, rs, y, available, candidates=cands,
                                                      folds=self.folds, seed=self.seed)
        if not regs:
            raise UserInputError(f"no layer type had {self.min_rows} rows to fit")
        self.regressors_ = regs
        self.cv_one_minus_r2_ = cv
        self.domain_ = {layer: {f: [min(float(r[f]) for r in by_type[layer]), max(float(r[f]) for r in by_type[layer])]
                                for f in DOMAIN_FEATURES if all(f in r for r in by_type[layer])}
                        for layer in regs}
        return self

    # -- predicting ----------------------------------------------------------------------------
    def predict_layer(self, layer: str, features: Mapping[str, float], *, allow_zero: bool = False) -> float:
        """Energy (J) of one forward pass of one layer (seconds when fitted with ``target="duration_s"``);
        ``macs`` is computed when not given. Where the regression clips to 0 (seed 000's MinMax recipe) this
        raises ``OutOfDomainError``, unless ``allow_zero`` (the whole-model path, which counts and notes them)."""
        check_fitted(self, "regressors_")
        reg = self.regressors_.get(layer)
        if reg is None:
            raise UserInputError(f"no regressor for layer type {layer!r}; have {', '.join(sorted(self.regressors_))}")
        f = dict(features)
        f.setdefault("groups", 1.0)
        f.setdefault("macs", seed000_macs(layer, f))
        value = float(reg.predict(np.array([[float(f[n]) for n in reg.features]]))[0])
        if not value > 0.0 and not allow_zero:  # the MinMax inverse clips a negative regression output to 0: not a figure
            raise OutOfDomainError(f"the {layer} regression predicts <= 0 for {dict(features)} (a linear fit "
                                   "extrapolating below its smallest measurements); measure layers this small "
                                   "or price the model with --predictor physical")
        return value

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile | None = None) -> EnergyEstimate:
        check_fitted(self, "regressors_")
        if self.target != "energy_j":
            raise UserInputError(f"this layerwise parameter set was fitted on {self.target} (time-only measurements), "
                                 "not energy: it predicts seconds per layer through predict_layer(), not joules")
        energies: dict[str, float] = {}
        unmodeled: Counter[str] = Counter()
        other_phase: Counter[str] = Counter()
        outside: list[str] = []
        phases = {get_record(n, TRACE).phase for n in gm.graph.nodes if get_record(n, TRACE) is not None}
        if phases & {"backward", "optimizer"}:
            raise OutOfDomainError("layerwise refuses training mode: seed 000 measured forward passes only and no "
                                   "backward rule is fitted; use the device's default predictor, or roofline or hef")
        domain = getattr(self, "domain_", None) or {}
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "get_attr", "output"):
                continue
            trace = get_record(node, TRACE, required_by="LayerwisePredictor")
            cost = get_record(node, COST)
            if cost is not None and cost.free:
                continue
            if not trace.calls:
                continue
            if trace.phase != "forward":
                other_phase[trace.phase] += 1
                energies[node.name] = 0.0
                continue
            try:
                found = layer_of_node(node)
            except Exception as e:  # noqa: BLE001 - a malformed call is a bug to report with the node
                raise UserInputError(f"layerwise: cannot read layer parameters of {node.format_node()}: {e}") from e
            if found is None or found[0] not in self.regressors_:
                label = found[0] if found else (trace.module_type if trace.module_type in FEATURES or not trace.calls
                                                else f"{trace.module_type}:{trace.calls[0].name}")
                unmodeled[label] += 1
                energies[node.name] = 0.0
                continue
            layer, f = found
            for feat, (lo, hi) in domain.get(layer, {}).items():
                v = f.get(feat)
                if v is not None and not (lo / DOMAIN_SLACK <= v <= hi * DOMAIN_SLACK):
                    outside.append(f"{node.name} ({layer} {feat}={v:.4g}, fitted {lo:.4g}..{hi:.4g})")
                    break
            energies[node.name] = self.predict_layer(layer, f, allow_zero=True)
        if outside:
            more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
            raise OutOfDomainError(f"layerwise refuses layers outside its training data: {', '.join(outside[:3])}{more}")
        notes = []
        clipped = sum(1 for n, e in energies.items() if e == 0.0) - sum(unmodeled.values()) - sum(other_phase.values())
        if clipped > 0:
            notes.append(f"layerwise: {clipped} layer(s) predicted at 0 J (the regression's MinMax target clips "
                         "small layers at zero)")
        if unmodeled:
            notes.append("layerwise: no regressor (0 J): "
                         + ", ".join(f"{k} x{v}" for k, v in sorted(unmodeled.items())))
        if other_phase:
            notes.append("layerwise: seed 000 models forward passes only; 0 J for "
                         + ", ".join(f"{v} {k} nodes" for k, v in sorted(other_phase.items())))
        return EnergyEstimate(energies, 0.0, "layerwise", self.hardware or "layerwise", tuple(notes))

    # -- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        check_fitted(self, "regressors_")
        params = {"regressors": {k: v.to_dict() for k, v in sorted(self.regressors_.items())},
                  "cv_one_minus_r2": self.cv_one_minus_r2_,
                  "domain": getattr(self, "domain_", None),
                  "hyper": {"candidates": list(self.candidates) if self.candidates else None, "folds": self.folds,
                            "seed": self.seed, "min_rows": self.min_rows}}
        if self.target != "energy_j":
            params["target"] = self.target
        return make_artifact("layerwise", self.hardware, params, self.fitted_on)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerwisePredictor:
        check_artifact(data, "layerwise")
        p = data["params"]
        h = p.get("hyper", {})
        self = cls(candidates=h.get("candidates"), folds=h.get("folds", 5), seed=h.get("seed", 0),
                   min_rows=h.get("min_rows", 10), hardware=data["hardware"], fitted_on=data["fitted_on"],
                   target=p.get("target", "energy_j"))
        self.regressors_ = {k: LayerRegressor.from_dict(v) for k, v in p["regressors"].items()}
        self.cv_one_minus_r2_ = p.get("cv_one_minus_r2", {})
        self.domain_ = p.get("domain") or None  # type: ignore[assignment]  # None: an artifact without a domain
        return self

    @classmethod
    def conformance_example(cls) -> tuple[Any, torch.fx.GraphModule, Any]:
        """A tiny synthetic dataset (E ∝ MACs) and a graph with Linear + ReLU, for the conformance suite."""
        from fxenergy.capture import capture

        rng = np.random.default_rng(0)
        rows = []
        for _ in range(30):
            b, i, o = (int(v) for v in rng.integers(1, 64, 3))
            rows.append({"layer_type": "Linear", "batch_size": b, "input_size": i, "output_size": o,
                         "energy_j": 1e-9 * (b * i * o + b * o) + 1e-6})
            rows.append({"layer_type": "ReLU", "batch_size": b, "input_size": i, "energy_j": 1e-10 * b * i + 1e-7})
        m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        gm = capture(m, torch.randn(4, 8)).graph_module
        return rows, gm, None


def _records(dataset: Any) -> list[dict[str, Any]]:
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns"):
        return [dict(r) for r in dataset.to_dict("records")]
    if isinstance(dataset, Iterable):
        return [dict(r) for r in dataset]
    raise UserInputError(f"layerwise fit needs rows (mappings) or a DataFrame, got {type(dataset).__name__}")
