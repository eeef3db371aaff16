"""Faults per warm forward pass of development models in the benchmark's state: after an in-process quick
calibration (as benchmarks/cpu_latency.py does), against the heap bytes the model charges (heap_bytes).

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_heap_faults_calibrated.py mobilenet_v2:4:192 resnet50:2:224 ...

Each argument is MODEL:BATCH:SIDE (torchvision); ~80 s of calibration first (saved to /tmp/cpu9/postcal-cal.json),
then per model the median of 5 timed passes after 2 warm-ups, with ``ru_minflt`` x 4 KiB around each.
"""
from __future__ import annotations

import os
import resource, statistics, sys, time, warnings
sys.path.insert(0, "benchmarks")
import torch
warnings.filterwarnings("ignore")
from fxenergy.calibrate import run_calibration, save_calibration
from fxenergy.analysis import analyse
from fxenergy.perf.cpu import heap_bytes, heap_fault_share, MMAP_THRESHOLD_BYTES, fresh_output_bytes
from fxenergy.records import TRACE, get_record
import cpu_latency as cl
def flt(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt * 4096
t = time.perf_counter(); cal = run_calibration(quick=True); os.makedirs("/tmp/cpu9", exist_ok=True); save_calibration(cal, "/tmp/cpu9/postcal-cal.json")
print(f"calibration {time.perf_counter()-t:.0f} s", flush=True)
gen = torch.Generator().manual_seed(0)
tf = tb = 0
for spec in sys.argv[1:]:
    name, b, s = spec.split(":"); b, s = int(b), int(s)
    built = cl.build(name, b, s)
    an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
    trs = [get_record(n, TRACE) for n in an.graph_module.graph.nodes if n.op in ("call_function", "call_module", "call_method")]
    hb = sum(heap_bytes(tr) for tr in trs); big = sum(fresh_output_bytes(tr) for tr in trs)
    share = heap_fault_share(trs)
    model = cl.real_model(built, name, s); args, kwargs = cl.real_inputs(built, gen)
    fs, ts = [], []
    with torch.no_grad():
        model(*args, **kwargs); model(*args, **kwargs)
        for _ in range(5):
            f0 = flt(); t0 = time.perf_counter(); model(*args, **kwargs); ts.append(time.perf_counter() - t0); fs.append(flt() - f0)
    f = statistics.median(fs); below = max(f - big, 0)
    tf += below if share else 0; tb += hb if share else 0
    print(f"{name} b{b}/{s}: {statistics.median(ts)*1e3:.1f} ms, faulted {f/2**20:.0f} MiB/pass {[round(v/2**20) for v in fs]}, "
          f">32MiB {big/2**20:.0f}, heap 1..32 {hb/2**20:.0f} MiB, charged share {share:.2f} -> measured share "
          f"{below/hb if hb else 0:.2f}", flush=True)
print(f"pooled measured share over charged graphs: {tf/tb if tb else 0:.3f}")
