"""Where the error of development timings comes from: page faults or the kernel curves (session cpu13).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python benchmarks/cpu_batch_diag.py CAL.json TIMINGS.json [...] [--fastest]

TIMINGS are ``cpu_latency_dev.py --timings`` files whose rows carry the counters (sixth field: measured page faults
per pass and the speed canary). Per case this prints the error of the default prediction, the model's fault time
(outputs over the mmap threshold, oneDNN copies, the allocator state's share of heap outputs: what the duration
model charges) beside the measured faults priced at the calibration's cost per byte, and the error once both sides'
fault time is taken off ("compute" error: what the kernel curves alone get wrong). Then the medians per batch
size and per family. ``--fastest`` keeps, of a case timed in several files, the fastest timing (the least disturbed by
the VM's speed, which moves whole-model times by up to 2x between runs). Fits nothing; captures only (meta tensors), no timing.
"""

from __future__ import annotations

import json
import statistics
import sys
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

from fxenergy.analysis import analyse, predict  # noqa: E402
from fxenergy.perf import cpu  # noqa: E402
from fxenergy.records import TRACE, get_record  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402

MiB = 2**20
FAMILIES = (("mobile", ("mobilenet", "mnasnet", "shufflenet", "efficientnet", "squeezenet")),
            ("grouped", ("regnet", "resnext")), ("dense", ("resnet", "wide_resnet", "vgg", "densenet", "alexnet")),
            ("transformer", ("vit", "swin", "convnext", "bert", "distilbert", "roberta", "gpt2", "t5", "maxvit")))


def family(name: str) -> str:
    return next((f for f, keys in FAMILIES if any(name.startswith(k) for k in keys)), "other")


def model_fault_bytes(traces: list, threads: int) -> tuple[float, float, float]:
    """(bytes the duration model charges page faults for per pass in the default allocator state, of which the
    always-charged ones: outputs over the mmap threshold and oneDNN copies; the graph's 1..32 MiB heap outputs)."""
    out = sum(cpu.fresh_output_bytes(t) for t in traces)
    conv = sum(sum(cpu._trace_conv_faults(t, threads, cpu.MMAP_THRESHOLD_BYTES)) for t in traces)
    heap = sum(cpu.heap_bytes(t) for t in traces)
    return float(out + conv + cpu.heap_fault_share(traces) * heap), float(out + conv), float(heap)


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    fastest = "--fastest" in argv
    argv = [a for a in argv if a != "--fastest"]
    cal, files = argv[0], argv[1:]
    doc = json.loads(Path(cal).read_text())["cpu_perf"]
    fault_s_per_byte, threads = float(doc.get("fault_s_per_byte", 0.0)), int(doc["threads"])
    setup = resolve(cal, "physical")
    rows = [r for f in files for r in json.loads(Path(f).read_text())]
    if fastest:
        best: dict[tuple, list] = {}
        for r in rows:
            if tuple(r[:3]) not in best or r[3] < best[tuple(r[:3])][3]:
                best[tuple(r[:3])] = r
        rows = list(best.values())
    cache: dict[tuple, tuple[float, tuple[float, float, float]]] = {}
    pooled: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    by_batch: dict[int, list[tuple[float, float]]] = defaultdict(list)
    by_family: dict[str, list[tuple[float, float]]] = defaultdict(list)
    print(f"{'case':<32} {'meas ms':>8} {'pred ms':>8} {'err':>7} | {'flt MiB':>7} {'model':>7} | "
          f"{'flt ms':>6} {'model':>6} | {'compute err':>11} | canary")
    for r in rows:
        name, b, s, m = r[0], r[1], r[2], r[3]
        ctr = r[5] if len(r) > 5 else {}
        key = (name, b, s)
        if key not in cache:
            built = cl.build(name, b, s)
            an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
            traces = [get_record(n, TRACE) for n in an.graph_module.graph.nodes]
            cache[key] = (float(sum(predict(an, setup).duration_s.values())), model_fault_bytes(traces, threads))
        pred, (model_b, always_b, heap_b) = cache[key]
        meas_b = float(ctr.get("faults_mib_per_pass", 0.0)) * MiB
        for i, v in enumerate((meas_b, always_b, heap_b)):
            pooled[b][i] += v
        err = pred / m - 1
        comp = (pred - model_b * fault_s_per_byte) / (m - meas_b * fault_s_per_byte) - 1
        by_batch[b].append((err, comp))
        by_family[family(name)].append((err, comp))
        print(f"{name + f' b{b}/{s}':<32} {m * 1e3:8.1f} {pred * 1e3:8.1f} {err:+7.1%} | {meas_b / MiB:7.1f} "
              f"{model_b / MiB:7.1f} | {meas_b * fault_s_per_byte * 1e3:6.1f} {model_b * fault_s_per_byte * 1e3:6.1f} | "
              f"{comp:+11.1%} | {ctr.get('canary_gflops', float('nan')):.0f} | heap {heap_b / MiB:6.0f} MiB, "
              f"implied share {(meas_b - always_b) / heap_b if heap_b else float('nan'):+.2f}")
    for label, groups in (("batch", by_batch), ("family", by_family)):
        for k in sorted(groups):
            v = groups[k]
            print(f"{label} {k!s:<12} n={len(v):2d}  median signed error {statistics.median(e for e, _ in v):+6.1%}  "
                  f"compute only {statistics.median(c for _, c in v):+6.1%}  "
                  f"median APE {statistics.median(abs(e) for e, _ in v):5.1%} / {statistics.median(abs(c) for _, c in v):5.1%}")
    for b, (meas_b, always_b, heap_b) in sorted(pooled.items()):
        print(f"batch {b:<3d} pooled faults: measured {meas_b / MiB:6.0f} MiB, always charged {always_b / MiB:6.0f}, heap "
              f"outputs {heap_b / MiB:6.0f}: implied heap share {(meas_b - always_b) / heap_b if heap_b else 0:+.3f} "
              f"(default state charges {cpu.HEAP_FAULT_SHARE_LONG_LIVED})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
