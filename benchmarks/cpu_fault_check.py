"""Check the CPU model's page-fault terms against the fault counters of a ``cpu_latency.py`` run.

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python benchmarks/cpu_fault_check.py RUN.json

``cpu_latency.py`` records, per case, the minor page faults of its timed passes (MiB per pass). The duration
model charges three fault terms (:mod:`fxenergy.perf.cpu`): outputs over the mmap threshold (every pass),
oneDNN's copies of large convolution operands (every pass), and a share of the 1..32 MiB heap outputs of graphs
whose heap outputs exceed glibc's trim threshold (:func:`fxenergy.perf.cpu.heap_fault_share`, by allocator state).
This prints each case's measured MiB beside the model's bytes, and the heap share the run implies when the
always-charged bytes are taken off the pooled measurement: a check of which allocator state the run's process
was in. It fits nothing and changes nothing; captures only (meta tensors), no timing.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

from fxenergy.analysis import analyse  # noqa: E402
from fxenergy.perf import cpu  # noqa: E402
from fxenergy.records import TRACE, get_record  # noqa: E402

MiB = 2**20


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    run = json.loads(Path(argv[0]).read_text())
    cal = Path(str(run.get("calibration", "")))
    threads = int(json.loads(cal.read_text())["cpu_perf"]["threads"]) if cal.is_file() else 2  # the run's threads
    measured = always = heap = 0.0
    for c in run["cases"]:
        if "faults_mib_per_pass" not in c:
            raise SystemExit(f"{argv[0]}: no fault counters (a run before session cpu10's benchmark)")
        built = cl.build(c["model"], c["batch"], c["size"])
        a = analyse(built.model, built.args, example_kwargs=built.kwargs, name=c["model"])
        traces = [get_record(n, TRACE) for n in a.graph_module.graph.nodes]
        out = sum(cpu.fresh_output_bytes(t) for t in traces) / MiB
        conv = sum(sum(cpu._trace_conv_faults(t, threads, cpu.MMAP_THRESHOLD_BYTES)) for t in traces) / MiB
        h = sum(cpu.heap_bytes(t) for t in traces) / MiB
        eligible = cpu.heap_fault_share(traces, "fresh") > 0
        m = float(c["faults_mib_per_pass"])
        measured, always = measured + m, always + out + conv
        heap += h if eligible else 0.0
        print(f"{c['model']:26s} b{c['batch']:<3d} measured {m:7.1f} MiB/pass | model: outputs over 32 MiB {out:7.1f}, "
              f"conv copies {conv:7.1f}, heap 1..32 MiB {h:7.1f}{' (over the trim threshold)' if eligible else ''}",
              flush=True)
    print(f"pooled over {len(run['cases'])} cases: measured {measured:.0f} MiB per pass; always charged {always:.0f}; "
          f"heap bytes of graphs over the trim threshold {heap:.0f}")
    if heap > 0:
        print(f"implied heap share (measured - always charged) / heap = {(measured - always) / heap:.3f} "
              f"(states: fresh {cpu.HEAP_FAULT_SHARE}, long-lived {cpu.HEAP_FAULT_SHARE_LONG_LIVED}, calibrated 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
