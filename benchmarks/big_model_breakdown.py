"""Where the time and memory of a big model's analysis go, in one process (default llama-2-70b, seq 128).

    uv run python benchmarks/big_model_breakdown.py [MODEL] [--no-compare] [--no-tracemalloc]

Prints, stage by stage, wall time and the process's resident set (VmRSS, and its peak VmHWM, from
/proc/self/status): ``import torch``, ``import transformers``, ``build_model`` (meta weights), then
``analyse`` with replay (the default) and, unless --no-compare, without it (every decoder layer run
on fake tensors). Then, with tracemalloc, the Python allocations still alive after one ``analyse``
(by file and per graph node), and how much of the per-node ATen call records the replayed nodes
share with the node they copy. Wall-clock only; on a shared machine, the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc


def _status() -> tuple[float, float]:
    d = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "VmHWM")))
    return int(d["VmRSS"].split()[0]) / 1e6, int(d["VmHWM"].split()[0]) / 1e6  # kB -> GB


def stage(name: str, t0: float) -> None:
    rss, hwm = _status()
    print(f"{name:<40} {time.perf_counter() - t0:7.2f} s   RSS {rss:5.2f} GB (peak {hwm:4.2f} GB)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="llama-2-70b")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--no-compare", action="store_true", help="skip the analysis without replay")
    ap.add_argument("--no-tracemalloc", action="store_true")
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    t = time.perf_counter()
    import torch

    stage("import torch", t)
    t = time.perf_counter()
    import transformers  # noqa: F401

    stage("import transformers", t)
    from fxenergy.analysis import analyse
    from fxenergy.records import META_KEY, TRACE

    t = time.perf_counter()
    from fxenergy.models import build_model

    b = build_model(a.model, seq_len=a.seq_len)
    stage(f"build_model({a.model!r}) on meta", t)
    t = time.perf_counter()
    on = analyse(b.model, b.args, example_kwargs=b.kwargs)
    nodes = len(on.graph_module.graph.nodes)
    stage(f"analyse, replay on ({nodes:,} nodes, {on.info['capture_replayed_calls']} calls replayed)", t)
    if not a.no_compare:
        t = time.perf_counter()
        off = analyse(b.model, b.args, example_kwargs=b.kwargs, replay=False)
        stage(f"analyse, replay off ({len(off.graph_module.graph.nodes):,} nodes)", t)
        same = [(r.module_path, r.phase, r.flops, r.bytes_read, r.bytes_written) for r in on.rows] == \
               [(r.module_path, r.phase, r.flops, r.bytes_read, r.bytes_written) for r in off.rows]
        print(f"rows identical with and without replay: {'yes' if same else 'NO'}")
        del off
    del on
    if a.no_tracemalloc:
        return
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    on = analyse(b.model, b.args, example_kwargs=b.kwargs)
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    diff = snap.compare_to(base, "filename")
    total = sum(d.size_diff for d in diff)
    print(f"\nPython allocations alive after one analyse: {total / 1e6:.1f} MB, {total / nodes / 1e3:.1f} kB per node")
    for d in diff[:8]:
        print(f"  {d.size_diff / 1e6:7.1f} MB  {d.traceback[0].filename.split('site-packages/')[-1].split('/work/')[-1]}")
    traces = [n.meta[META_KEY][TRACE] for n in on.graph_module.graph.nodes if META_KEY in n.meta]
    calls = {id(tr.calls) for tr in traces if tr.calls}
    print(f"nodes with ATen calls: {sum(1 for tr in traces if tr.calls):,}; distinct call records: {len(calls):,} "
          "(replayed nodes share their template's)")
    del torch


if __name__ == "__main__":
    main()
