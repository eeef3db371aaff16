"""Seed 004's HEF power law: the math, the parameter files, and the paper's sec. 5.2 worked example."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import transformers

import fxenergy
from fxenergy.errors import UserInputError
from fxenergy.passes.ops import family_of
from fxenergy.predictors.hef_law import (
    FAMILIES,
    HEFParameters,
    PowerLaw,
    fit_power_law,
    list_hef_parameters,
    load_hef_parameters,
    work_for,
)

AIM = 0.15  # held-out median APE of duration per family (scripts/fit_hef.py)
SHIPPED = {"hef-seed004-a100", "hef-seed004-rtx2080ti", "hef-fitted-a100", "hef-fitted-rtx2080ti",
           "hef-fitted-a30", "hef-fitted-rtx2080ti-ops"}
FITTED = sorted(n for n in SHIPPED if "fitted" in n)

# --- the law ---------------------------------------------------------------------------------------


def test_efficiency_and_duration_closed_form():
    law = PowerLaw(eta_max=0.5, k=2.0, alpha=0.5, unit="TFLOP")
    # c = 4e12 FLOP = 4 TFLOP: eta = 0.5 * (1 - exp(-2 * 4**0.5)) = 0.5 * (1 - e**-4) = 0.490842
    assert law.efficiency(4e12) == pytest.approx(0.490842, rel=1e-6)
    # t = 4e12 / (1e12 FLOP/s * 0.490842) = 8.149259 s
    assert law.duration_s(4e12, 1e12) == pytest.approx(8.149259, rel=1e-6)


def test_vectorised_saturation_floor_and_zero_work():
    law = PowerLaw(eta_max=0.5, k=2.0, alpha=1.0, unit="GB")
    work = np.array([0.0, 1e3, 1e9, 1e13])
    t = law.duration_s(work, 1e9)
    assert t.shape == (4,) and t[0] == 0.0  # no work, no time
    # alpha = 1, c -> 0: t -> scale / (peak * eta_max * k) = 1e9 / (1e9 * 0.5 * 2) = 1 s (a floor)
    assert t[1] == pytest.approx(1.0, rel=1e-5)
    # c = 1 GB: t = 1e9 / (1e9 * 0.5 * (1 - e**-2)) = 2.313035 s
    assert t[2] == pytest.approx(2.313035, rel=1e-6)
    # c = 1e4 GB: eta = eta_max, t = 1e13 / (1e9 * 0.5) = 2e4 s
    assert t[3] == pytest.approx(2e4)
    assert np.all(np.diff(t[1:]) > 0)


def test_units_are_only_a_scale():
    # c_T = c_G / 1000, so k_T * c_T**a == k_G * c_G**a when k_G = k_T * 1000**-a
    tera = PowerLaw(0.6, 8.0, 0.7, "TFLOP")
    giga = PowerLaw(0.6, 8.0 * 1000**-0.7, 0.7, "GFLOP")
    assert giga.efficiency(3e11) == pytest.approx(tera.efficiency(3e11))
    assert tera.basis == "flops" and PowerLaw(0.5, 1.0, 1.0, "GB").basis == "bytes"


@pytest.mark.parametrize("kwargs", [{"unit": "PFLOP"}, {"alpha": 0.0}, {"eta_max": -0.1}, {"k": math.inf}])
def test_bad_law_refused(kwargs):
    with pytest.raises(UserInputError):
        PowerLaw(**{"eta_max": 0.5, "k": 1.0, "alpha": 0.5, "unit": "TFLOP", **kwargs})


@pytest.mark.parametrize("method", ["log", "eta", "auto"])
def test_fit_recovers_a_known_curve(method):
    truth = PowerLaw(0.6, 8.0, 0.7, "TFLOP")
    work = np.geomspace(1e8, 1e13, 30)
    fit = fit_power_law(work, truth.duration_s(work, 156e12), 156e12, unit="TFLOP", method=method)
    assert (fit.eta_max, fit.k, fit.alpha) == pytest.approx((0.6, 8.0, 0.7), rel=1e-3)


@pytest.mark.parametrize("op, family", [
    ("addmm", "matmul"), ("mm", "matmul"), ("bmm", "bmm"), ("convolution", "convolution"),
    ("native_batch_norm", "normalization"), ("native_layer_norm", "normalization"), ("_softmax", "softmax"),
    ("mean", "reduction"), ("avg_pool2d", "pooling"), ("max_pool2d_with_indices", "pooling"),
    ("embedding", "embedding"), ("cat", "embedding"), ("relu_", "elementwise"), ("gelu", "elementwise"),
])
def test_family_of(op, family):
    assert family_of(op) == family


def test_family_bases_and_work():
    compute = {f for f, fam in FAMILIES.items() if fam.basis == "flops"}
    assert compute == {"matmul", "bmm", "attention_score", "attention_output", "convolution"}
    # contraction FLOPs win over elementwise ones; a pointwise node's work is its elementwise FLOPs
    assert work_for("flops", flops=10, elementwise_flops=3, bytes_moved=99) == 10
    assert work_for("flops", flops=0, elementwise_flops=3, bytes_moved=99) == 3
    assert work_for("bytes", flops=10, elementwise_flops=3, bytes_moved=99) == 99


# --- parameter files -------------------------------------------------------------------------------


def test_bundled_names():
    assert set(list_hef_parameters()) == SHIPPED


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_file_loads_and_round_trips(name):
    p = load_hef_parameters(name)
    again = HEFParameters.from_dict(json.loads(json.dumps(p.to_dict())), origin="round trip")
    assert again == p and again.to_dict() == p.to_dict()
    for family, (law, basis) in p.families.items():
        assert basis == law.basis
        work = np.array([1e6, 1e9, 1e12])
        t = p.duration_s(family, work)
        assert np.all(np.isfinite(t)) and np.all(t > 0) and np.array_equal(t, again.duration_s(family, work))


def test_unknown_schema_is_refused(tmp_path):
    data = load_hef_parameters("hef-fitted-a30").to_dict() | {"schema": "fxenergy.hef-params/99"}
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match="unknown schema") as err:
        load_hef_parameters(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("patch, match", [
    ({"families": {"matrix": {"eta_max": 0.5, "k": 1, "alpha": 1, "unit": "TFLOP", "basis": "flops"}}}, "unknown family"),
    ({"families": {"matmul": {"eta_max": 0.5, "k": 1, "alpha": 1, "unit": "TFLOP", "basis": "bytes"}}}, "does not match"),
    ({"peak_flops": -1}, "positive"),
    ({"extra": 1}, "unknown key"),
])
def test_malformed_file_is_refused(patch, match):
    with pytest.raises(UserInputError, match=match):
        HEFParameters.from_dict(load_hef_parameters("hef-fitted-a30").to_dict() | patch)


def test_unknown_name_suggests():
    with pytest.raises(UserInputError, match="did you mean hef-seed004-a100"):
        load_hef_parameters("hef-seed04-a100")


@pytest.mark.parametrize("name", FITTED)
def test_fitted_files_record_data_split_and_heldout_error(name):
    on = load_hef_parameters(name).fitted_on
    assert "@" in on["upstream"] and on["split"]["seed"] == 4 and on["split"]["train_fraction"] == 0.7
    for family, meta in on["families"].items():
        assert meta["n_test"] > 0 and meta["n_train"] > meta["n_test"]
        # Either within the aim, or the file says why not (scripts/fit_hef.py ABOVE_AIM): a30
        # convolution/elementwise/reduction and rtx2080ti-ops convolution, 17-32%.
        assert meta["heldout_median_ape_duration"] <= AIM or meta["above_aim_reason"], (name, family)


@pytest.mark.parametrize("name, seed", [("hef-fitted-rtx2080ti", "hef-seed004-rtx2080ti"),
                                        ("hef-fitted-a100", "hef-seed004-a100")])
def test_paper_method_refit_reproduces_the_published_curves(name, seed):
    """The eta-space refit (seed 004's own method) lands within 3 points of eta_max of the paper
    (RTX Table 1: 0.05-0.2 points; A100 Table 7: 0.4, 2.6 and 1.6 points for proj, score, output)."""
    fitted, published = load_hef_parameters(name).fitted_on["families"], load_hef_parameters(seed).families
    for family in ("matmul", "attention_score", "attention_output"):
        assert fitted[family]["eta_method_fit"]["eta_max"] == pytest.approx(published[family].law.eta_max, abs=0.03)


# --- seed 004, sec. 5.2 -----------------------------------------------------------------------------

B, T = 64, 320
MODELS = {"A": (6, 512, 8), "B": (12, 768, 12)}  # layers, d_model, heads
# Table 6 as printed (FLOPs), and Table 8 (TFLOPs, eta %, t as printed in "10^6 s").
TABLE6 = {"A": {"qkv": 6.44e10, "final": 4.30e10, "scores": 6.74e9, "output": 6.74e9},
          "B": {"qkv": 3.43e11, "final": 2.29e11, "scores": 2.69e10, "output": 2.69e10}}
TABLE8 = {("matmul", "A"): (0.1074, 35.45, 19.4), ("attention_score", "A"): (0.00674, 5.15, 0.76),
          ("attention_output", "A"): (0.00674, 6.68, 0.64), ("matmul", "B"): (0.572, 57.65, 63.6),
          ("attention_score", "B"): (0.0269, 11.98, 1.23), ("attention_output", "B"): (0.0269, 15.37, 1.12)}


def _gpt(layers: int, d: int, heads: int, attn: str = "eager") -> fxenergy.Result:
    cfg = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads, n_positions=T, vocab_size=50257,
                                  use_cache=False)
    with torch.device("meta"):
        model = transformers.GPT2Model._from_config(cfg, attn_implementation=attn).eval()
    ids = torch.zeros(B, T, dtype=torch.long, device="meta")
    return fxenergy.annotate(model, example_kwargs={"input_ids": ids})


def _per_layer(result: fxenergy.Result, layers: int) -> list[dict[str, int]]:
    out = []
    for i in range(layers):
        rows = [r for r in result.rows if r.module_path.startswith(f"h.{i}.attn")]
        pick = lambda path, rows=rows: next(r.flops for r in rows if r.module_path == path and r.op == "addmm")  # noqa: E731
        scores, output = (r.flops for r in rows if r.module_path == f"h.{i}.attn" and r.op == "bmm")
        out.append({"qkv": pick(f"h.{i}.attn.c_attn"), "final": pick(f"h.{i}.attn.c_proj"),
                    "scores": scores, "output": output})
    return out


@pytest.mark.parametrize("model", ["A", "B"])
def test_sec52_flops_per_operation(model):
    """Our FLOP pass against the closed forms of seed 004 sec. 3 (FLOPs = 2 x MACs), per layer:
    QKV = 2*B*T*d*3d, final projection = 2*B*T*d*d, scores = output = h*B*2*T^2*d_k = 2*B*T^2*d.
    A: 3.2212e10, 1.0737e10, 6.7109e9; B: 7.2478e10, 2.4159e10, 1.0066e10.

    Table 6 follows none of these, per layer or summed over layers. Its ratios to the per-layer
    closed forms are A: QKV 2.0 (= 2*B*T*d^2 * L: the factor 3 dropped, x6 layers), final 4.0
    (= one 4d-wide FFN matmul), scores 1.004; B: QKV 4.73, final 9.48, scores 2.67 — no product of
    B, T, d, L, h reproduces both columns. The authors' later code (MLEnergyConsumption,
    src/UseCaseFunctions.py) computes the closed forms above. We assert the formulas.
    """
    layers, d, heads = MODELS[model]
    expect = {"qkv": 2 * B * T * d * 3 * d, "final": 2 * B * T * d * d,
              "scores": heads * B * 2 * T**2 * (d // heads), "output": heads * B * 2 * T**2 * (d // heads)}
    per_layer = _per_layer(_gpt(layers, d, heads), layers)
    assert per_layer == [expect] * layers
    ratio = {k: TABLE6[model][k] / expect[k] for k in expect}
    printed = {"A": (2.0, 4.0, 1.004, 1.004), "B": (4.73, 9.48, 2.67, 2.67)}[model]
    assert tuple(ratio.values()) == pytest.approx(printed, rel=2e-3)


def test_sec52_sdpa_node_is_scores_plus_output():
    # With SDPA (the default attention) one node holds both products: 2 * 6.7109e9 = 1.34218e10 per layer
    layers, d, heads = MODELS["A"]
    sdpa = [r for r in _gpt(1, d, heads, attn="sdpa").rows if r.module_path == "h.0.attn" and r.flops]
    assert [r.flops for r in sdpa] == [2 * (2 * B * T**2 * d)] and family_of(sdpa[0].op) == "bmm"


def test_sec52_energy_eq16():
    """Eq. 16 with Table 3's coefficients and Table 8's printed durations:
    E_A = 23.8962 + 0.1089*19.4 + 0.4743*0.76 - 0.1029*0.64 = 26.3035 J (printed 26.30)
    E_B = 23.8962 + 0.1089*63.6 + 0.4743*1.23 - 0.1029*1.12 = 31.2904 J (printed 31.28: 0.01 off).
    The seed file stores the coefficients per second (printed unit = 1e-4 s, see below), so with
    durations in seconds (printed * 1e-4 s) it gives the same joules.

    Table 8 is not what Table 7 + Eq. 4/3 give at its own FLOPs:
    * eta: Eq. 4 with Table 7 gives 53.37, 7.97, 9.94 % (A) and 68.10, 20.79, 25.62 % (B) against
      the printed 35.45, 5.15, 6.68 and 57.65, 11.98, 15.37 %.
    * t: the projection rows are c / (v_max * eta_percent) * 1e6 with the printed eta (19.42, 63.60):
      eta in percent (x100) and seconds->microseconds (x1e6), i.e. one printed unit is 1e-4 s, not
      "10^6 s". The scores/output rows are a further 10-11.7x smaller than that same expression.
    Following the formula instead (Table 7 eta, Eq. 3 in seconds, coefficients per second):
    at Table 8's FLOPs E_A = 27.42 J, E_B = 33.00 J; with our per-layer FLOPs summed over the
    layers, as Eq. 2 sums over operations, E_A = 43.75 J and E_B = 73.03 J.
    """
    p = load_hef_parameters("hef-seed004-a100")
    h, el, v_max = p.energy.h_j, p.energy.elasticity_j_per_s, p.peak_flops
    printed = {m: p.energy.h_j + sum(el[f] * TABLE8[f, m][2] * 1e-4 for f in el) for m in "AB"}
    assert printed["A"] == pytest.approx(26.3035, abs=1e-4) and round(printed["A"], 2) == 26.30
    assert printed["B"] == pytest.approx(31.2904, abs=1e-4) and round(printed["B"], 2) == 31.29  # paper: 31.28
    for (family, _model), (tflops, eta_pct, t_printed) in TABLE8.items():
        eta = p.families[family].law.efficiency(tflops * 1e12)
        assert abs(100 * eta - eta_pct) > 2.5  # Table 8's eta is not Eq. 4 with Table 7
        t_unit = tflops * 1e12 / (v_max * eta_pct) * 1e6  # == t_true_s / 1e-4 s
        assert t_unit / t_printed == pytest.approx(1.0, abs=2e-3) if family == "matmul" else 10 < t_unit / t_printed < 12
    formula = {m: h + sum(el[f] * p.duration_s(f, TABLE8[f, m][0] * 1e12) for f in el) for m in "AB"}
    assert (formula["A"], formula["B"]) == pytest.approx((27.4245, 32.9999), abs=1e-3)
    ours = {}
    for m, (layers, d, _) in MODELS.items():
        qkv, final, attn = 2 * B * T * d * 3 * d, 2 * B * T * d * d, 2 * B * T**2 * d
        per_layer = (el["matmul"] * p.duration_s("matmul", np.array([qkv, final])).sum()
                     + el["attention_score"] * p.duration_s("attention_score", attn)
                     + el["attention_output"] * p.duration_s("attention_output", attn))
        ours[m] = h + layers * per_layer
    assert (ours["A"], ours["B"]) == pytest.approx((43.746, 73.034), abs=1e-2)
