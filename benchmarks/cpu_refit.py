"""Refit a CPU calibration file's kernel-class curves with the current fitting code (no re-measuring).

    uv run python benchmarks/cpu_refit.py OLD.json NEW.json [--no-weight-term] [--no-activation-term] [--no-drift-correction]
        [--free-per-byte] [--drop-1px-pointwise]

Reads the microbenchmark measurements a ``fxenergy calibrate`` file keeps, fits them again with
:func:`fxenergy.calibrate.fit_cpu_perf` (same peaks, threads, dispatch cost, page-fault cost and DRAM
copy bandwidth as the file recorded), and writes the file with its ``cpu_perf`` replaced. Files with a speed trace
(session cpu15 on) have their measurements put on one machine state first (:func:`fxenergy.calibrate.fitting.
normalise_drift`) unless ``--no-drift-correction``: the A/B of the correction on the same measurements. For
development: comparing a fitting change on the same measurements (e.g. with cpu_latency_dev.py),
without the minute of machine time a new calibration costs and without its run-to-run spread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import fxenergy.calibrate.fitting as fitting
from fxenergy.calibrate import fit_cpu_perf
from fxenergy.calibrate.fitting import drift_note, normalise_drift
from fxenergy.calibrate.timing import Measurement


def refit(data: dict, *, drift: bool = True) -> dict:
    """``data`` (a calibration document) with ``cpu_perf`` fitted again on its measurements (put on one machine state
    first where the file has a speed trace and ``drift``)."""
    old = data["cpu_perf"]
    ms = [Measurement.from_dict(m) for m in data["measurements"]]
    info: dict = {"applied": False, "why": "--no-drift-correction"}
    if drift:
        ms, info = normalise_drift(ms, data.get("speed_trace") or ())
    fitted_on = {k: v for k, v in old.get("fitted_on", {}).items() if k not in ("in_sample", "fault_s_per_byte", "per_byte_anchor")}
    fitted_on["drift"] = info
    stream = data["hef"]["fitted_on"].get("stream", {}).get("bytes_per_s", 0.0)
    perf = fit_cpu_perf(ms, old["peak_flops"], old["peak_bytes_per_s"], threads=old["threads"],
                        dispatch_s=old["dispatch_s"], fitted_on={**fitted_on, "refit_of": data.get("created")},
                        fault_s_per_byte=old.get("fault_s_per_byte", 0.0), dram_bytes_per_s=stream)
    return {**data, "cpu_perf": {**perf.to_dict(), "power": old.get("power", {})}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--no-weight-term", action="store_true",
                   help="fit dense convolutions without their weight-byte term (the fit before session cpu13)")
    p.add_argument("--no-activation-term", action="store_true",
                   help="fit 1x1 convolutions without their activation-byte term (the fit before session cpu14)")
    p.add_argument("--free-per-byte", action="store_true",
                   help="choose every per-byte term freely on its grid, none anchored to the DRAM copy rate (before cpu16)")
    p.add_argument("--no-drift-correction", action="store_true",
                   help="fit the times as measured, not put on one machine state (the fit before session cpu15)")
    p.add_argument("--drop-1px-pointwise", action="store_true",
                   help="fit the 1x1-convolution law without its 1x1-map (squeeze-excitation) rows (session cpu20's variant)")
    args = p.parse_args(argv)
    if args.drop_1px_pointwise:
        fitting.POINTWISE_MIN_PIXELS = 2
    if args.no_activation_term:
        fitting.ACTIVATION_TERM = False
    if args.no_weight_term:
        fitting.WEIGHT_TERM = False
    if args.free_per_byte:
        fitting.PER_BYTE_ANCHOR = {}
    out = refit(json.loads(Path(args.old).read_text()), drift=not args.no_drift_correction)
    Path(args.new).write_text(json.dumps(out, indent=1) + "\n")
    perf = out["cpu_perf"]
    print(drift_note(perf["fitted_on"]["drift"]))
    print(f"weight streaming {perf.get('weight_bytes_per_s', 0) / 1e9:.1f} GB/s, DRAM copy "
          f"{perf.get('dram_bytes_per_s', 0) / 1e9:.1f} GB/s")
    for cls, st in perf["fitted_on"]["in_sample"].items():
        print(f"  {cls:16s} rows {st['rows']:3d}  in-sample median APE {st['mdape']:.1%}  worst {st['max_ape']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
