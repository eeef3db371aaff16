"""Where the time of ``fxenergy report MODEL`` goes after imports, phase by phase, in one process.

    uv run python benchmarks/report_phases.py [MODEL ...] [--repeats N]

Runs the phases ``cli._cmd_report`` runs for one device and the default predictor: ``build_model``,
``analyse``, the prediction, the error band (every other applicable backend on the same analysis)
and rendering to JSON; the first model pays the imports, so its figures include them (say
``--warm`` to build it once before timing). Wall-clock only; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["llama-2-70b", "gpt2", "resnet18"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--warm", action="store_true", help="build and analyse each model once before timing")
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    from fxenergy.analysis import analyse, predict
    from fxenergy.api import predictor_band
    from fxenergy.models import build_model
    from fxenergy.options import DEFAULT_HARDWARE
    from fxenergy.report import render
    from fxenergy.resolve import resolve

    for name in a.models:
        if a.warm:
            b = build_model(name)
            analyse(b.model, b.args, example_kwargs=b.kwargs, name=b.name)
        times: dict[str, list[float]] = {}
        for _ in range(a.repeats):
            t = time.perf_counter()
            b = build_model(name)
            t1 = time.perf_counter()
            setup = resolve(DEFAULT_HARDWARE, None)
            an = analyse(b.model, b.args, example_kwargs=b.kwargs, name=b.name)
            t2 = time.perf_counter()
            pred = predict(an, setup)
            t3 = time.perf_counter()
            result = an.result(pred)
            result.info["band_j"] = predictor_band(an, setup, pred)
            t4 = time.perf_counter()
            render(result, "json", by="module", depth=None, top=None)
            t5 = time.perf_counter()
            for k, v in (("build_model", t1 - t), ("analyse", t2 - t1), ("predict", t3 - t2), ("band", t4 - t3),
                         ("render json", t5 - t4)):
                times.setdefault(k, []).append(v)
        nodes = len(an.graph_module.graph.nodes)
        print(f"{name} ({nodes:,} nodes, {setup.hardware}, {setup.predictor}; band over "
              f"{', '.join((result.info['band_j'] or {}).get('backends', []))}), median of {a.repeats}:")
        for k, v in times.items():
            print(f"  {k:<12} {statistics.median(v):7.3f} s")


if __name__ == "__main__":
    main()
