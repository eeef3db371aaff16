"""A/B of the calibration's drift correction on the same measurements (issue 12, session cpu15): development cases only.

    uv run python benchmarks/cpu_drift_ab.py --calibrations A.json B.json C.json --timings dev1.json [dev2.json ...]

Each calibration file (written with a speed trace) is refitted twice by ``benchmarks/cpu_refit.py``'s :func:`refit`:
``raw`` (times as measured, the fit before session cpu15) and ``normalised`` (times put on the run's median canary,
:func:`fxenergy.calibrate.fitting.normalise_drift`). Development timings (``benchmarks/cpu_latency_dev.py --timings``,
whose rows carry each case's speed canary) are predicted with every refit, and the script prints

(0) per microbenchmark, the spread of its time across the calibrations (standard deviation of log time; median over
    the rows every calibration has), raw vs normalised with several smoothing windows: the most direct check that the
    correction removes run-to-run drift rather than adding canary noise; with each window, the slope of a row's
    log(time / its mean in the other calibrations) on log(its factor / theirs): -1 where times scale as 1 / canary,
    0 where the factors are noise;
(a) how far apart the calibrations' predictions of the same case are (max / min - 1 over the calibrations; median and
    worst over the cases), raw vs normalised: a correction that removes each run's drift brings them together;
(b) per calibration, median / mean / worst APE and Spearman against the dev times as measured, raw vs normalised;
(c) the same with each measured dev time also put on that calibration's reference state (x case canary / the
    calibration's median canary, clamped as the fit clamps): what the model would score if the dev cases had been
    timed at the calibration's typical speed.

Refits are written next to the calibrations (``*.raw.json``, ``*.norm.json``). The dev sets must not hold a case of
``benchmarks/cpu_latency.py`` (checked: that file's cases are the judged ones).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
from cpu_refit import refit  # noqa: E402

from fxenergy.calibrate.fitting import DRIFT_CLAMP, normalise_drift  # noqa: E402
from fxenergy.calibrate.timing import Measurement  # noqa: E402


def _predict(rows: list, files: list[str]) -> np.ndarray:
    """Predicted seconds, one row per file, one column per timed case (each case analysed once)."""
    from fxenergy.analysis import analyse, predict
    from fxenergy.resolve import resolve

    setups = [resolve(f, "physical") for f in files]
    out = np.zeros((len(files), len(rows)))
    for j, (name, b, s, *_rest) in enumerate(rows):
        built = cl.build(name, b, s)
        an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
        for i, st in enumerate(setups):
            out[i, j] = float(sum(predict(an, st).duration_s.values()))
    return out


def _row_spread(docs: list[dict]) -> None:
    """(0): per row present in every calibration, the SD of log time across them, raw and normalised."""
    def key(m: Measurement) -> str:
        return json.dumps([m.op, m.shape, dict(m.params)], default=str)

    raw = [[Measurement.from_dict(d) for d in doc["measurements"]] for doc in docs]
    common = set.intersection(*({key(m) for m in ms} for ms in raw))
    print(f"\n(0) SD of log time of the same microbenchmark across the {len(docs)} calibrations ({len(common)} rows): "
          "median over rows, and over the convolution / matmul+bmm / memory-bound rows")
    variants: list[tuple[str, list[list[Measurement]]]] = [("raw", raw)]
    for w in (5.0, 10.0, 20.0, 40.0):
        variants.append((f"normalised, window +-{w:g} s",
                         [normalise_drift(ms, doc["speed_trace"], smooth_s=w)[0] for ms, doc in zip(raw, docs)]))
    raw_by = [{key(m): m.median_s for m in ms} for ms in raw]
    for name, sets in variants:
        by = [{key(m): m for m in ms} for ms in sets]
        if name != "raw":  # does a row's time follow its factor? slope of log(t / the others' mean) on log(f / theirs)
            x, y = [], []
            for k in common:
                lt = np.log([r[k] for r in raw_by])
                lf = np.log([b[k].median_s for b in by]) - lt
                for i in range(len(docs)):
                    rest = [j for j in range(len(docs)) if j != i]
                    y.append(lt[i] - lt[rest].mean())
                    x.append(lf[i] - lf[rest].mean())
            slope = float(np.polyfit(x, y, 1)[0])
            name += f" (slope {slope:+.2f}, r {np.corrcoef(x, y)[0, 1]:+.2f})"
        sd = {k: float(np.std(np.log([b[k].median_s for b in by]))) for k in common}
        fam = {k: by[0][k].family for k in common}
        groups = {"conv": [sd[k] for k in common if fam[k] == "convolution"],
                  "mm": [sd[k] for k in common if fam[k] in ("matmul", "bmm")],
                  "memory": [sd[k] for k in common if fam[k] not in ("convolution", "matmul", "bmm")]}
        print(f"  {name:48s} {np.median(list(sd.values())):.3f}  " +
              "  ".join(f"{g} {np.median(v):.3f}" for g, v in groups.items() if v))


def _line(pred: np.ndarray, meas: np.ndarray) -> str:
    s = cl.ape_stats(list(pred), list(meas))
    return (f"{s['median_ape']:6.1%} {s['mean_ape']:6.1%} {s['worst_ape']:6.1%} {s['spearman']:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrations", nargs="+", required=True)
    p.add_argument("--timings", nargs="+", required=True)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = [r for t in args.timings for r in json.loads(Path(t).read_text())]
    assert not {(r[0], r[1], r[2]) for r in rows} & set(cl.CASES), "a judged case in the development timings"
    meas = np.array([r[3] for r in rows])
    case_canary = np.array([r[5].get("canary_gflops", np.nan) if len(r) > 5 else np.nan for r in rows])
    files: dict[str, list[str]] = {"raw": [], "normalised": []}
    refs = []
    for cal in args.calibrations:
        data = json.loads(Path(cal).read_text())
        for kind, drift in (("raw", False), ("normalised", True)):
            out = Path(cal).with_suffix(f".{kind[:4]}.json")
            doc = refit(data, drift=drift)
            out.write_text(json.dumps(doc, indent=1) + "\n")
            files[kind].append(str(out))
            if drift:
                info = doc["cpu_perf"]["fitted_on"]["drift"]
                refs.append(info["reference_gflops"])
                g = [q["gflops"] for q in data["speed_trace"]]
                print(f"{cal}: canary {min(g):.0f}-{max(g):.0f} GFLOP/s (median {statistics.median(g):.0f}) over "
                      f"{data['speed_trace'][-1]['t_s']:.0f} s; factors {info['factor_min']:.2f}-{info['factor_max']:.2f}")
    _row_spread([json.loads(Path(c).read_text()) for c in args.calibrations])
    preds = {k: _predict(rows, v) for k, v in files.items()}
    print(f"\n{len(rows)} development cases; case canaries {np.nanmin(case_canary):.0f}-{np.nanmax(case_canary):.0f} "
          f"GFLOP/s (median {np.nanmedian(case_canary):.0f})")
    print("\n(a) spread of the calibrations' predictions of the same case (max / min - 1): median, worst")
    for kind, pr in preds.items():
        spread = pr.max(axis=0) / pr.min(axis=0) - 1
        print(f"  {kind:10s} {np.median(spread):6.1%} {spread.max():6.1%}")
    print("\n(b) against the dev times as measured: median / mean / worst APE, Spearman")
    for i, cal in enumerate(args.calibrations):
        for kind, pr in preds.items():
            print(f"  {Path(cal).name:24s} {kind:10s} {_line(pr[i], meas)}")
    print("\n(c) dev times also put on each calibration's reference state (x case canary / its median canary)")
    for i, cal in enumerate(args.calibrations):
        on_ref = meas * np.clip(case_canary / refs[i], *DRIFT_CLAMP)
        for kind, pr in preds.items():
            print(f"  {Path(cal).name:24s} {kind:10s} {_line(pr[i], on_ref)}")
    print("\nper case: measured ms, canary; predicted ms per calibration, raw | normalised")
    for j, r in enumerate(rows):
        cells = " | ".join(f"{' '.join(f'{preds[k][i, j] * 1e3:7.1f}' for i in range(len(args.calibrations)))}"
                           for k in preds)
        print(f"  {r[0]:<22} b{r[1]:<3} {r[2]:4d} {meas[j] * 1e3:8.1f} {case_canary[j]:4.0f} | {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
