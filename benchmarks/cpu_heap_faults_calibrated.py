"""Faults per warm forward pass of development models in the benchmark's state: after an in-process quick
calibration (as benchmarks/cpu_latency.py does), against the heap bytes the model charges (heap_bytes).

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_heap_faults_calibrated.py mobilenet_v2:4:192 resnet50:2:224 ...

Each argument is MODEL:BATCH:SIDE (torchvision); ~80 s of calibration first (kept in --calibration-out), then per
model the median of 5 timed passes after 2 warm-ups, with ``ru_minflt`` x 4 KiB counted around each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
from cpu_heap_faults import faulted_bytes  # noqa: E402

from fxenergy.analysis import analyse  # noqa: E402
from fxenergy.calibrate import run_calibration, save_calibration  # noqa: E402
from fxenergy.perf.cpu import fresh_output_bytes, heap_bytes, heap_fault_share  # noqa: E402
from fxenergy.records import TRACE, get_record  # noqa: E402

MIB = 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="+", help="MODEL:BATCH:SIDE")
    p.add_argument("--calibration-out", default="/tmp/fxenergy-postcal-cal.json")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    t = time.perf_counter()
    save_calibration(run_calibration(quick=True), args.calibration_out)
    print(f"calibration {time.perf_counter() - t:.0f} s, saved to {args.calibration_out}", flush=True)
    gen = torch.Generator().manual_seed(0)
    tot_faulted = tot_heap = 0
    for spec in args.cases:
        name, b, s = spec.split(":")
        batch, side = int(b), int(s)
        built = cl.build(name, batch, side)
        an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
        traces = [get_record(n, TRACE) for n in an.graph_module.graph.nodes
                  if n.op in ("call_function", "call_module", "call_method")]
        heap = sum(heap_bytes(tr) for tr in traces)
        big = sum(fresh_output_bytes(tr) for tr in traces)
        share = heap_fault_share(traces, "fresh")
        model = cl.real_model(built, name, side)
        inputs, kwargs = cl.real_inputs(built, gen)
        faults, times = [], []
        with torch.no_grad():
            for _ in range(2):
                model(*inputs, **kwargs)
            for _ in range(5):
                f0, t0 = faulted_bytes(), time.perf_counter()
                model(*inputs, **kwargs)
                times.append(time.perf_counter() - t0)
                faults.append(faulted_bytes() - f0)
        f = statistics.median(faults)
        below = max(f - big, 0)
        if share:
            tot_faulted += below
            tot_heap += heap
        print(f"{name} b{batch}/{side}: {statistics.median(times) * 1e3:.1f} ms, faulted {f / MIB:.0f} MiB/pass "
              f"{[round(v / MIB) for v in faults]}, >32MiB {big / MIB:.0f}, heap 1..32 {heap / MIB:.0f} MiB, share "
              f"charged in the fresh state {share:.2f}, measured {below / heap if heap else 0:.2f}", flush=True)
    print(f"pooled measured share over graphs charged in the fresh state: {tot_faulted / tot_heap if tot_heap else 0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
