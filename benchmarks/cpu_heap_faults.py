"""Page faults per warm forward pass against the fresh heap outputs (1..32 MiB) the model predicts (HEAP_FAULT_SHARE).

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_heap_faults.py mnasnet1_0:8:224 resnet50:8:224 ...

Each argument is MODEL:BATCH:SIDE (torchvision); faults are ``ru_minflt`` x 4 KiB around a pass, median of 3 after
2 warm-ups. A 64 MiB tensor is allocated and freed first; that does NOT raise glibc's thresholds (only a freed mmapped
chunk of at most 32 MiB does), so this is the ``"fresh"`` allocator state of fxenergy.perf.cpu.ALLOCATOR_STATE. With
``--calibrated`` first argument, a 31 MiB tensor is allocated and freed instead: thresholds near their maximum, the
state a calibration leaves (``"calibrated"``).
"""

from __future__ import annotations

import resource
import sys
import warnings

import torch
import torchvision

from fxenergy.analysis import analyse
from fxenergy.perf.cpu import MMAP_THRESHOLD_BYTES, fresh_output_bytes, heap_bytes
from fxenergy.records import TRACE, get_record


def faulted_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt * 4096


def main(specs: list[str]) -> None:
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)
    calibrated = bool(specs) and specs[0] == "--calibrated"
    specs = specs[1:] if calibrated else specs
    x = torch.empty((31 if calibrated else 64) * 2**20 // 4).fill_(1)  # 31 MiB: raises glibc's thresholds
    del x
    print("allocator state:", "calibrated (31 MiB freed)" if calibrated else "fresh (64 MiB freed: thresholds unmoved)")
    tot_f = tot_b = 0
    for spec in specs:
        name, b, s = spec.split(":")
        m = getattr(torchvision.models, name)().eval()
        inp = torch.randn(int(b), 3, int(s), int(s))
        an = analyse(m, (inp,), name=name)
        big = mid = 0
        for n in an.graph_module.graph.nodes:
            tr = get_record(n, TRACE) if n.op in ("call_function", "call_module", "call_method") else None
            big += fresh_output_bytes(tr, MMAP_THRESHOLD_BYTES)
            mid += heap_bytes(tr)
        for _ in range(2):
            m(inp)
        fs = []
        for _ in range(3):
            f0 = faulted_bytes()
            m(inp)
            fs.append(faulted_bytes() - f0)
        f = sorted(fs)[1]
        below = max(f - big, 0)
        tot_f += below
        tot_b += mid
        print(f"{name} b{b}/{s}: faulted {f / 2**20:.0f} MiB/pass ({[round(v / 2**20) for v in fs]}), fresh >32MiB "
              f"{big / 2**20:.0f}, 1..32MiB {mid / 2**20:.0f}: share {below / mid if mid else 0:.2f}", flush=True)
    print(f"pooled share of fresh 1..32 MiB outputs faulted per pass: {tot_f / tot_b if tot_b else 0:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
