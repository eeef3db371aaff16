"""Derive the spec-sheet CPU efficiencies of :mod:`fxenergy.perf.cpu` (``SPEC_EFFICIENCY``) from two CPUs, leave-one-CPU-out.

    uv run python scripts/fit_cpu_spec.py --collect A.cal.json [...]   # (re)build scripts/data/cpu_spec_rows.json.gz (~3 min)
    uv run python scripts/fit_cpu_spec.py                              # derive; per-row leave-one-CPU-out table
    uv run python scripts/fit_cpu_spec.py --models T.timings.json [...] # + whole models: A's timings, B's AlexNet/VGG runs

The two CPUs (2 threads each):

* ``A``: this project's VM (AMD EPYC, 2 cores; its spec from ``detect_local()``: 2.6 GHz, 256-bit, 2 FMA units):
  the microbenchmark rows of ``fxenergy calibrate --quick`` files (``measurements``: op, work, median seconds), one
  or several sessions' files.
* ``B``: the Xeon Gold 5120 of seed 000 (bundled profile ``xeon-gold-5120``): ``../shared/data/cpu-layers-getzner``
  per-layer random configs (Conv2d, Linear, MaxPool2d, ReLU, Sigmoid, Softmax, Tanh; seconds per pass = duration /
  forward_passes) and the per-layer rows of its AlexNet/VGG runs (``architecture-layers``, ``layer_idx`` > 0).

Each row is reduced to its kernel class, contraction FLOPs, element-wise FLOPs, bytes moved and seconds, with
fxenergy's own counts (a layer captured on the meta device; a calibration row's own counts) and stored with the
CPU's spec figures (peak FLOP/s, cache levels, dispatch) in ``scripts/data/cpu_spec_rows.json.gz``, so the derivation
is reproducible without the calibration files (tests/test_cpu_spec_efficiency.py re-derives the shipped figures).

Derivation, per CPU and class: the efficiency that minimises the squared log error of the spec-sheet duration
(:meth:`fxenergy.perf.cpu.CpuDurationModel._spec_time` plus one dispatch) over the class's rows (all of them; B's random
layer configs and its AlexNet/VGG layers alike, :data:`MODEL_SOURCES`): a compute-bound class's ``eta_max`` (ramp :data:`~fxenergy.perf.cpu.SPEC_RAMP` kept), a memory-bound class's
fraction of its level's spec bandwidth.

What transfers between the two CPUs is the SHAPE (each class relative to large GEMMs), not the level: A runs its GEMMs
and dense convolutions at ~1.0x its spec peak (its detected 2.6 GHz understates its boost clock), B at ~0.5-0.6x (its
AVX-512 code runs below the 2.2 GHz base the profile states), so each CPU's absolute figures price the other ~2x off.
So each CPU's figures are taken relative to its own ``matmul`` (:data:`ANCHOR`), times the stated 0.80 (the level
stays the one stated assumption), and per class (:func:`derive`):

* both CPUs measured it and their figures agree better with each other than either does with the stated one (a
  leave-one-CPU-out test per class, :func:`transfers`): the geometric mean of the two ("two CPUs");
* only A measured it (grouped and depthwise convolutions, batched matmuls, normalisation, reductions, gathers, layout
  copies): A's figure ("CPU A only": one CPU, stable over six calibration sessions, not validated on another);
* else the stated figure stays ("stated": the two CPUs disagree, e.g. ``tanh`` at 0.035 vs 0.49, relative).

Figures are capped at 1 (:data:`CAP`) and rounded to 3 digits. Leave-one-CPU-out (:func:`held_out`): each CPU priced with
the other CPU's relative figures for the classes derived from data, stated ones elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402

from fxenergy.datasets import GETZNER_FILES  # noqa: E402
from fxenergy.perf import cpu  # noqa: E402
from fxenergy.perf.cpu import CpuSpec  # noqa: E402
from fxenergy.predictors.hef_law import PowerLaw  # noqa: E402
from fxenergy.records import NodeCost  # noqa: E402

ROWS_FILE = ROOT / "scripts" / "data" / "cpu_spec_rows.json.gz"
THREADS = 2
GETZNER = tuple(sorted(Path(f).stem for f in GETZNER_FILES.values()))  # conv2d, linear, ..., tanh: the random-config files
BOUNDS = (1e-3, 4.0)
ANCHOR = "matmul"
"""The class whose stated figure (0.80 of spec peak) sets the level: the others are derived as ratios to it."""
CAP = 1.0
"""No shipped figure above 1: a spec-sheet duration never beats the spec peak or the level's spec bandwidth."""
MODEL_SOURCES: frozenset[str] = frozenset()
"""Row sources a CPU's class is fitted on alone where it has rows from them (:func:`class_rows`); empty (the shipped
choice, made before any whole-model check): every row. ``{"architecture-layers"}`` fits B's classes on its AlexNet/VGG
layers alone where it has them (tried after: docs/validation.md, session cpu19's section, gives its figures)."""


# -- rows -----------------------------------------------------------------------------------------------
def spec_dict(spec: CpuSpec, name: str) -> dict[str, Any]:
    return {"profile": name, "threads": spec.threads, "cores": spec.cores, "peak_flops": spec.peak_flops,
            "levels": [list(lv) if math.isfinite(lv[1]) else [lv[0], "inf", lv[2]] for lv in spec.levels],
            "dispatch_s": spec.dispatch_s}


def spec_of(d: Mapping[str, Any]) -> CpuSpec:
    levels = tuple((str(n), math.inf if c == "inf" else float(c), float(b)) for n, c, b in d["levels"])
    return CpuSpec(int(d["threads"]), int(d["cores"]), float(d["peak_flops"]), levels, float(d["dispatch_s"]))


def rows_a(files: list[str]) -> list[dict[str, Any]]:
    """Rows of quick-calibration files: one per microbenchmark (in-place rows after their producer less the producer's
    time, as the calibration fits them)."""
    from fxenergy.calibrate.fitting import inplace_rows, measurement_class
    from fxenergy.calibrate.timing import Measurement

    out = []
    for f in files:
        ms = [Measurement.from_dict(d) for d in json.loads(Path(f).read_text())["measurements"]]
        for m in inplace_rows(ms):
            if m.median_s > 0 and (m.flops or m.elementwise_flops or m.bytes):
                out.append({"cpu": "A", "src": Path(f).name, "what": m.op, "cls": measurement_class(m),
                            "flops": int(m.flops), "ew": int(m.elementwise_flops), "bytes": int(m.bytes),
                            "s": float(m.median_s)})
    return out


def _layer_cost(module: Any, shape: tuple[int, ...]) -> tuple[NodeCost, str] | None:
    import torch

    from fxenergy.capture import capture
    from fxenergy.passes.costs import CostPass, get_convention
    from fxenergy.records import COST, TRACE, get_record

    gm = capture(module, torch.empty(*shape, device="meta")).graph_module
    CostPass(get_convention("default"))(gm)
    for n in gm.graph.nodes:
        c = get_record(n, COST)
        if c is not None and not c.free:
            return c, cpu.kernel_class(get_record(n, TRACE), c)
    return None


def _getzner_layer(kind: str, r: Mapping[str, str]) -> tuple[Any, tuple[int, ...]]:
    import torch.nn as nn

    i = {k: int(float(v)) for k, v in r.items() if k in ("batch_size", "image_size", "kernel_size", "in_channels",
                                                         "out_channels", "stride", "padding", "input_size", "output_size")}
    b = i["batch_size"]
    if kind == "conv2d":
        return (nn.Conv2d(i["in_channels"], i["out_channels"], i["kernel_size"], i["stride"], i["padding"]),
                (b, i["in_channels"], i["image_size"], i["image_size"]))
    if kind == "maxpool2d":
        return nn.MaxPool2d(i["kernel_size"], i["stride"], i["padding"]), (b, i["in_channels"], i["image_size"], i["image_size"])
    if kind == "linear":
        return nn.Linear(i["input_size"], i["output_size"]), (b, i["input_size"])
    mod = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "softmax": nn.Softmax(dim=1), "tanh": nn.Tanh()}[kind]
    return mod, (b, i["input_size"])


def rows_b(data: Path) -> list[dict[str, Any]]:
    """Rows of seed 000's Xeon: the random layer configs and the layers of its AlexNet/VGG runs."""
    out = []
    for kind in GETZNER:
        with open(data / "cpu-layers-getzner" / f"{kind}.csv") as fh:
            for r in csv.DictReader(fh):
                mod, shape = _getzner_layer(kind, r)
                got = _layer_cost(mod, shape)
                if got is None:
                    continue
                c, cls = got
                out.append({"cpu": "B", "src": f"{kind}.csv", "what": kind, "cls": cls, "flops": c.flops,
                            "ew": c.elementwise_flops, "bytes": c.bytes_read + c.bytes_written,
                            "s": float(r["duration"]) / float(r["forward_passes"])})
    sys.path.insert(0, str(ROOT / "scripts"))
    import fit_physical as fp

    for r in fp.layer_rows(fp.read_runs(data)):
        c = r["cost"]
        cls = cpu.kernel_class(*_trace_cost(fp, r))
        out.append({"cpu": "B", "src": "architecture-layers", "what": f"{r['architecture']} b{r['batch_size']} "
                    f"#{r['layer_idx']} {r['module']}", "cls": cls, "flops": c.flops, "ew": c.elementwise_flops,
                    "bytes": c.bytes_read + c.bytes_written, "s": float(r["seconds"])})
    return out


def _trace_cost(fp: Any, r: Mapping[str, Any]) -> tuple[Any, NodeCost]:
    from fxenergy.records import COST, TRACE, get_record

    mods = [n for n in fp.graph(r["architecture"], r["batch_size"]).graph.nodes if n.op == "call_module"]
    node = mods[r["layer_idx"] - 1]
    return get_record(node, TRACE), get_record(node, COST)


def collect(cal_files: list[str], data: Path) -> dict[str, Any]:
    from fxenergy.hardware import detect_local, load_profile

    a = detect_local("cpu")
    return {"about": "rows of scripts/fit_cpu_spec.py: per kernel class, work as fxenergy counts it and measured "
                     "seconds; cpu A = this project's VM (quick-calibration microbenchmarks), B = the Xeon Gold 5120 "
                     "of seed 000 (../shared/data/cpu-layers-getzner)",
            "sources": {"A": [Path(f).name for f in cal_files], "B": "cpu-layers-getzner/*.csv + architecture-layers"},
            "specs": {"A": spec_dict(cpu.cpu_spec(a, THREADS), a.name),
                      "B": spec_dict(cpu.cpu_spec(load_profile("xeon-gold-5120"), THREADS), "xeon-gold-5120")},
            "rows": rows_a(cal_files) + rows_b(data)}


def read_rows(path: Path = ROWS_FILE) -> dict[str, Any]:
    """The rows file (gzipped JSON) :func:`collect` wrote."""
    return json.loads(gzip.decompress(path.read_bytes()))


# -- the spec-sheet model, vectorised over rows ----------------------------------------------------------
def spec_s(spec: CpuSpec, cls: str, eff: float, rows: list[dict[str, Any]]) -> np.ndarray:
    """Spec-sheet seconds of ``rows`` (all of class ``cls``) with efficiency ``eff``: as ``_spec_time`` + one dispatch."""
    flops = np.array([r["flops"] for r in rows], float)
    ew = np.array([r["ew"] for r in rows], float)
    ws = np.array([r["bytes"] for r in rows], float)
    bw = np.array([spec.level_of(w)[1] for w in ws])
    t_mem, t_ew = ws / bw, ew / (spec.peak_flops * cpu.VECTOR_EFFICIENCY)
    if cls in cpu.SPEC_LAWS:
        law = PowerLaw(eff, *cpu.SPEC_RAMP, "GFLOP")
        with np.errstate(divide="ignore", invalid="ignore"):
            t_c = np.where(flops > 0, law.duration_s(flops, spec.peak_flops), 0.0) + t_ew
        t = np.maximum(t_c, t_mem)
    else:
        t = np.maximum(t_ew, t_mem) * cpu.MEMORY_EFFICIENCY / eff
    return t + spec.dispatch_s


def fit_class(spec: CpuSpec, cls: str, rows: list[dict[str, Any]]) -> float:
    """The efficiency of class ``cls`` minimising the mean squared log error over ``rows``."""
    y = np.log([r["s"] for r in rows])

    def loss(log_eff: float) -> float:
        return float(np.mean((np.log(spec_s(spec, cls, math.exp(log_eff), rows)) - y) ** 2))

    res = minimize_scalar(loss, bounds=tuple(math.log(b) for b in BOUNDS), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def class_rows(doc: Mapping[str, Any], which: str, cls: str) -> list[dict[str, Any]]:
    """CPU ``which``'s rows of class ``cls``: those from :data:`MODEL_SOURCES` where it has any, else all of them."""
    rows = [r for r in doc["rows"] if r["cpu"] == which and r["cls"] == cls]
    model = [r for r in rows if r["src"] in MODEL_SOURCES]
    return model or rows


def fit_cpu(doc: Mapping[str, Any], which: str) -> dict[str, float]:
    """``{class: efficiency}`` fitted on CPU ``which``'s rows (the classes it has rows of)."""
    spec = spec_of(doc["specs"][which])
    classes = sorted({r["cls"] for r in doc["rows"] if r["cpu"] == which})
    return {c: fit_class(spec, c, class_rows(doc, which, c)) for c in classes}


def relative(fit: Mapping[str, float]) -> dict[str, float]:
    """A CPU's figures as ratios to its own :data:`ANCHOR` class, times the anchor's stated figure: the shape of the
    class efficiencies, at the stated level (what a spec sheet cannot tell: see the module docstring)."""
    anchor = fit[ANCHOR]
    return {c: cpu.SPEC_EFFICIENCY_STATED[ANCHOR] * v / anchor for c, v in fit.items()}


def transfers(a: float, b: float, stated: float) -> bool:
    """Leave-one-CPU-out per class: each CPU's figure is nearer (in log) the other CPU's than the stated one."""
    d = abs(math.log(a / b))
    return d < abs(math.log(a / stated)) and d < abs(math.log(b / stated))


def _round(v: float) -> float:
    return float(f"{min(v, CAP):.3g}")


def derive(doc: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The shipped figures and where each comes from (see the module docstring): ``({class: efficiency},
    {class: "stated" | "two CPUs" | "CPU A only" | "anchor"})``."""
    ra, rb = relative(fit_cpu(doc, "A")), relative(fit_cpu(doc, "B"))
    eff, src = {}, {}
    for c in cpu.KERNEL_CLASSES:
        stated = cpu.SPEC_EFFICIENCY_STATED[c]
        if c == ANCHOR:
            eff[c], src[c] = stated, "anchor"
        elif c in ra and c in rb and transfers(ra[c], rb[c], stated):
            eff[c], src[c] = _round(math.sqrt(ra[c] * rb[c])), "two CPUs"
        elif c in ra and c not in rb:
            eff[c], src[c] = _round(ra[c]), "CPU A only"
        else:
            eff[c], src[c] = stated, "stated"
    return eff, src


def held_out(doc: Mapping[str, Any], fit_on: str) -> dict[str, float]:
    """Figures to price the OTHER CPU with, from CPU ``fit_on`` alone: its relative figure where :func:`derive` uses
    data for the class and ``fit_on`` has rows of it, else the stated figure (no class is priced with its own
    CPU's data)."""
    eff, src = derive(doc)
    own = relative(fit_cpu(doc, fit_on))
    return {c: (_round(own[c]) if src[c] in ("two CPUs", "CPU A only") and c in own else cpu.SPEC_EFFICIENCY_STATED[c])
            for c in cpu.KERNEL_CLASSES}


@contextmanager
def spec_efficiency(eff: Mapping[str, float]) -> Iterator[None]:
    """Price with ``eff`` as :data:`fxenergy.perf.cpu.SPEC_EFFICIENCY` (and its laws) inside the block."""
    old = cpu.SPEC_EFFICIENCY, cpu.SPEC_LAWS
    cpu.SPEC_EFFICIENCY = dict(eff)
    cpu.SPEC_LAWS = {c: PowerLaw(eff[c], *cpu.SPEC_RAMP, "GFLOP") for c in old[1]}
    try:
        yield
    finally:
        cpu.SPEC_EFFICIENCY, cpu.SPEC_LAWS = old


# -- scoring -------------------------------------------------------------------------------------------
def ape_stats(pred: Any, meas: Any) -> dict[str, float]:
    r = np.asarray(pred, float) / np.asarray(meas, float)
    ape = np.abs(r - 1) * 100
    return {"n": len(r), "median": float(np.median(ape)), "mean": float(np.mean(ape)), "worst": float(np.max(ape)),
            "off2x": int(np.sum((r > 2) | (r < 0.5))), "ratio_median": float(np.median(r))}


def fmt(s: Mapping[str, float]) -> str:
    return (f"{s['n']:5d} | {s['median']:6.1f}% | {s['mean']:6.1f}% | {s['worst']:7.1f}% | {s['off2x']:4d} | "
            f"{s['ratio_median']:.2f}")


def score_rows(doc: Mapping[str, Any], which: str, eff: Mapping[str, float]) -> dict[str, Any]:
    spec = spec_of(doc["specs"][which])
    rows = [r for r in doc["rows"] if r["cpu"] == which]
    pred, meas, per = [], [], {}
    for c in sorted({r["cls"] for r in rows}):
        rs = [r for r in rows if r["cls"] == c]
        p = spec_s(spec, c, eff[c], rs)
        m = [r["s"] for r in rs]
        per[c] = ape_stats(p, m)
        pred += list(p)
        meas += m
    return {"all": ape_stats(pred, meas), "per_class": per}


@contextmanager
def recording(out: list[dict[str, Any]]) -> Iterator[None]:
    """Record every node the CPU duration model prices inside the block: its floor (work at the profile's peak) and
    its priced parts ``[class, FLOPs, element-wise FLOPs, bytes, launches]`` (several for a node priced call by call),
    so that any efficiencies can re-price it (:func:`node_s`) without capturing the model again."""
    M = cpu.CpuDurationModel
    outer, inner = M.node_duration, M._node_duration

    def node_duration(self: Any, trace: Any, cost: NodeCost, launches: int) -> Any:
        import torch

        out.append({"floor_s": (cost.flops + cost.elementwise_flops) / self.profile.peak_flops_for(torch.float32),
                    "parts": []})
        return outer(self, trace, cost, launches)

    def _node_duration(self: Any, trace: Any, cost: NodeCost, launches: int) -> Any:
        t, model, cls = inner(self, trace, cost, launches)
        out[-1]["parts"].append([cls, cost.flops, cost.elementwise_flops, cost.bytes_read + cost.bytes_written, launches])
        return t, model, cls

    M.node_duration, M._node_duration = node_duration, _node_duration  # type: ignore[method-assign]
    try:
        yield
    finally:
        M.node_duration, M._node_duration = outer, inner  # type: ignore[method-assign]


def model_s(spec: CpuSpec, nodes: list[dict[str, Any]], eff: Mapping[str, float]) -> float:
    """Spec-sheet seconds of a recorded model (:func:`recording`) with efficiencies ``eff``."""
    total = 0.0
    for n in nodes:
        t = 0.0
        for cls, flops, ew, ws, launches in n["parts"]:
            row = {"flops": flops, "ew": ew, "bytes": ws}
            t += float(spec_s(spec, cls, eff[cls], [row])[0]) + (max(launches, 1) - 1) * spec.dispatch_s
        total += max(t, n["floor_s"])
    return total


def record_a(timings: list[str]) -> dict[str, Any]:
    """A's recorded whole-model cases priced by the spec path (``hardware="local"``), nodes recorded."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import warnings

    import cpu_latency as cl

    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    warnings.filterwarnings("ignore")
    setup = resolve("local", "physical")
    assert setup.profile is not None
    cases = []
    for f in timings:
        d = json.loads(Path(f).read_text())
        for r in d["cases"] if isinstance(d, dict) else d:
            name, b, s, measured = r[0], int(r[1]), r[2], float(r[3])
            built = cl.build(name, b, s)
            an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
            nodes: list[dict[str, Any]] = []
            with recording(nodes):
                total = float(sum(predict(an, setup).duration_s.values()))
            cases.append({"case": f"{name} b{b} {s}", "src": Path(f).name, "measured_s": measured,
                          "predicted_s": total, "nodes": nodes})
            print(f"  {name} b{b} {s}: {len(nodes)} nodes", file=sys.stderr, flush=True)
    spec = cpu.cpu_spec(setup.profile, THREADS)
    return {"spec": spec_dict(spec, setup.profile.name), "eff": dict(cpu.SPEC_EFFICIENCY), "cases": cases}


def record_b(data: Path) -> dict[str, Any]:
    """Seed 000's whole AlexNet/VGG runs (seconds per pass) priced by the spec path at 2 threads, nodes recorded."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import fit_physical as fp

    from fxenergy.hardware import load_profile
    from fxenergy.records import DURATION, get_record

    dm = cpu.CpuDurationModel(load_profile(fp.HARDWARE), THREADS)
    cases = []
    for r in (r for r in fp.read_runs(data) if r["layer_idx"] == 0):
        gm = fp.graph(r["architecture"], r["batch_size"])
        nodes: list[dict[str, Any]] = []
        with recording(nodes):
            fp._durations(gm, dm)
        total = sum(d.duration_s for n in gm.graph.nodes if (d := get_record(n, DURATION)) is not None)
        cases.append({"case": f"{r['architecture']} b{r['batch_size']}", "src": "architecture-layers",
                      "measured_s": r["seconds"], "predicted_s": total, "nodes": nodes})
    return {"spec": spec_dict(dm.spec, fp.HARDWARE), "eff": dict(cpu.SPEC_EFFICIENCY), "cases": cases}


def score_models(rec: Mapping[str, Any], eff: Mapping[str, float]) -> tuple[dict[str, float], list[float]]:
    spec = spec_of(rec["spec"])
    pred = [model_s(spec, c["nodes"], eff) for c in rec["cases"]]
    return ape_stats(pred, [c["measured_s"] for c in rec["cases"]]), pred


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", nargs="+", metavar="CAL", help="rebuild the rows file from these calibration files")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--rows", type=Path, default=ROWS_FILE)
    ap.add_argument("--models", nargs="*", metavar="TIMINGS", help="also score whole models: A's recorded timings "
                    "(cpu_latency*.py timings files) and B's AlexNet/VGG runs")
    ap.add_argument("--record", type=Path, default=Path("/tmp/cpu_spec_models.json"),
                    help="where the recorded whole models are kept (.A.json, .B.json; made if missing, delete to redo)")
    ap.add_argument("--model-layers-first", action="store_true",
                    help="fit a class on rows from model layers alone where it has any (MODEL_SOURCES; a variant)")
    ap.add_argument("--per-class", action="store_true", help="print each class's rows")
    ap.add_argument("--per-case", action="store_true", help="print each whole-model case")
    ap.add_argument("--per-source", action="store_true", help="fit A on each calibration file alone (stability)")
    args = ap.parse_args(argv)
    if args.collect:
        doc = collect(args.collect, args.data)
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        args.rows.write_bytes(gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 9, mtime=0))
        print(f"wrote {args.rows}: {len(doc['rows'])} rows")
    doc = read_rows(args.rows)
    if args.model_layers_first:
        global MODEL_SOURCES
        MODEL_SOURCES = frozenset({"architecture-layers"})
    eff, src = derive(doc)
    fa, fb = fit_cpu(doc, "A"), fit_cpu(doc, "B")
    ra, rb = relative(fa), relative(fb)
    effs = {"stated": dict(cpu.SPEC_EFFICIENCY_STATED), "held-out A": held_out(doc, "B"), "held-out B": held_out(doc, "A"),
            "derived": eff, "shipped": dict(cpu.SPEC_EFFICIENCY)}
    print("class            | stated |  fit A |  fit B | A rel. | B rel. | derived | from       | shipped | rows A | rows B")
    for c in cpu.KERNEL_CLASSES:
        na, nb = len(class_rows(doc, "A", c)), len(class_rows(doc, "B", c))
        cell = lambda d, k: f"{d[k]:6.3f}" if k in d else "     -"  # noqa: E731
        print(f"{c:<16} | {effs['stated'][c]:6.3f} | {cell(fa, c)} | {cell(fb, c)} | {cell(ra, c)} | {cell(rb, c)} | "
              f"{eff[c]:7.3f} | {src[c]:<10} | {effs['shipped'][c]:7.3f} | {na:6d} | {nb:6d}")
    if eff != effs["shipped"]:
        print("NB: the shipped SPEC_EFFICIENCY (fxenergy/perf/cpu.py) differs from the derived figures")
    if args.per_source:
        for name in doc["sources"]["A"]:
            one = {**doc, "rows": [r for r in doc["rows"] if r["cpu"] != "A" or r["src"] == name]}
            print(f"A from {name}: " + ", ".join(f"{c} {v:.3f}" for c, v in fit_cpu(one, "A").items()))
    print("\nrows (per-layer / microbenchmark): n | median APE | mean | worst | off by >2x | median predicted/measured")
    for which in ("A", "B"):
        for k in ("stated", f"held-out {which}", "derived"):
            print(f"  CPU {which}, {k:<10} | {fmt(score_rows(doc, which, effs[k])['all'])}")
        if args.per_class:
            for c, st in score_rows(doc, which, effs[f"held-out {which}"])["per_class"].items():
                print(f"      {c:<15} held-out {fmt(st)}  | stated {fmt(score_rows(doc, which, effs['stated'])['per_class'][c])}")
    if args.models is not None:
        recs = {}
        for which, path in (("B", args.record.with_suffix(".B.json")), ("A", args.record.with_suffix(".A.json"))):
            if which == "A" and not args.models and not path.exists():
                continue
            if not path.exists():
                path.write_text(json.dumps(record_b(args.data) if which == "B" else record_a(args.models)))
            recs[which] = json.loads(path.read_text())
        for which, rec in recs.items():
            check = score_models(rec, rec["eff"])[1]  # the efficiencies it was recorded with
            drift = max(abs(p / c["predicted_s"] - 1) for p, c in zip(check, rec["cases"]))
            print(f"\nwhole models, CPU {which} ({len(rec['cases'])} cases; re-priced vs the model's own total: "
                  f"{drift:.1e} max rel. difference): n | median | mean | worst | >2x | median predicted/measured")
            preds, keys = {}, ("stated", f"held-out {which}", "derived")
            for k in keys:
                st, preds[k] = score_models(rec, effs[k])
                print(f"  {k:<9} | {fmt(st)}")
            if args.per_case:
                for i, c in enumerate(rec["cases"]):
                    print(f"    {c['case']:<30} {c['measured_s'] * 1e3:9.2f} ms | " +
                          " | ".join(f"{k} {preds[k][i] / c['measured_s']:.2f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
