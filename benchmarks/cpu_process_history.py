"""Faults and times of DEVELOPMENT cases against the history of the process that times them (issue 12, cpu10).

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_process_history.py --mode history
    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_process_history.py --mode fresh
    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_process_history.py --mode calibrated

``history``: one process that did NOT calibrate builds and times :data:`FILLERS` (development models, as the
benchmark's ``--cli-calibration`` process times ~20 models before its mobile networks), then times
:data:`TARGETS`; then pins glibc's thresholds with ``mallopt`` (mmap 32 MiB, trim 64 MiB) and times the targets
again. ``fresh``: each target in its own interpreter. ``calibrated``: an in-process quick calibration, then the
fillers, then the targets. Per target: the median of at least 3 timed passes after 2 warm-ups
(``cpu_latency.time_case``), minor faults per pass, steal share; per process: glibc's current dynamic mmap
threshold (probed with ``malloc`` and ``mallinfo2``, see :func:`mmap_threshold`), the number of malloc arenas and
the bytes each holds (``malloc_info``). No target is a case of benchmarks/cpu_latency.py.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402

FILLERS: tuple[tuple[str, int, int], ...] = (
    ("resnet34", 8, 128), ("vgg13", 2, 160), ("regnet_x_400mf", 8, 160), ("densenet169", 2, 160),
    ("resnext101_32x8d", 1, 160), ("convnext_small", 1, 160), ("wide_resnet101_2", 2, 128), ("alexnet", 8, 224),
    ("vgg11", 8, 128), ("resnet152", 4, 96), ("densenet161", 2, 128), ("regnet_x_800mf", 4, 224),
    ("regnet_x_3_2gf", 2, 160), ("regnet_y_1_6gf", 4, 160), ("resnext50_32x4d", 4, 128), ("efficientnet_b1", 1, 224),
    ("mnasnet0_5", 1, 224), ("vgg13", 1, 224), ("shufflenet_v2_x0_5", 1, 224), ("mobilenet_v2", 1, 224),
)
"""Development cases (cpu_latency_dev sets) timed first, as the benchmark's process times other models first."""
TARGETS: tuple[tuple[str, int, int], ...] = (
    ("mobilenet_v3_large", 16, 128), ("mobilenet_v3_large", 8, 192), ("mobilenet_v2", 16, 128),
    ("mobilenet_v2", 8, 224), ("mobilenet_v3_small", 16, 160), ("mnasnet1_0", 8, 192), ("mnasnet0_5", 8, 224),
    ("efficientnet_b1", 4, 192), ("shufflenet_v2_x0_5", 8, 224), ("regnet_y_800mf", 4, 224), ("resnet34", 4, 160),
    ("resnet101", 1, 224),
)
"""Development cases whose faults are compared between process histories (mobile nets above batch 1 first)."""
assert not (set(FILLERS) | set(TARGETS)) & set(cl.CASES)

MIB = 2**20
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_libc = ctypes.CDLL("libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.fopen.restype = ctypes.c_void_p
_libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.fclose.argtypes = [ctypes.c_void_p]
_libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]


class Mallinfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_libc.mallinfo2.restype = Mallinfo2
_kept: list[int] = []  # probe blocks that were mmapped: never freed (freeing one would raise the threshold)


def _is_mmapped(size: int) -> bool:
    before = _libc.mallinfo2().hblks
    ptr = _libc.malloc(size)
    if _libc.mallinfo2().hblks > before:
        _kept.append(ptr)
        return True
    _libc.free(ptr)
    return False


def mmap_threshold() -> int:
    """The smallest ``malloc`` that gets its own mapping now (``mallinfo2().hblks`` grows), to 64 KiB: glibc's
    dynamic mmap threshold where the heap has no free chunk that large, larger where it has (then the heap serves it;
    33 MiB = nothing up to 33 MiB is mmapped). glibc raises the threshold to the size of any mmapped chunk freed while
    it is at most 32 MiB, so probe blocks that were mmapped are kept (a few MiB of address space, never touched)."""
    lo, hi = 64 * 1024, 33 * MIB
    if not _is_mmapped(hi):
        return hi
    while hi - lo > 64 * 1024:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _is_mmapped(mid) else (mid, hi)
    return hi


def arenas() -> list[int]:
    """Bytes of system memory each malloc arena holds now (``malloc_info``'s ``<system type="current">``)."""
    path = tempfile.mktemp(suffix=".xml")
    fp = _libc.fopen(path.encode(), b"w")
    _libc.malloc_info(0, fp)
    _libc.fclose(fp)
    text = Path(path).read_text()
    Path(path).unlink()
    heaps = re.findall(r'<heap nr="\d+">(.*?)</heap>', text, re.S)
    return [int(m.group(1)) for h in heaps if (m := re.search(r'<system type="current" size="(\d+)"', h))]


def allocator_line() -> str:
    mi, sizes = _libc.mallinfo2(), arenas()
    return (f"mmap threshold {mmap_threshold() / MIB:.2f} MiB; {len(sizes)} arenas holding "
            f"{[round(s / MIB, 1) for s in sizes]} MiB; heap in use {mi.uordblks / MIB:.0f} MiB, free "
            f"{mi.fordblks / MIB:.0f} MiB, top {mi.keepcost / MIB:.1f} MiB, mmapped {mi.hblks} blocks")


def time_all(cases, gen, label: str) -> list[dict]:  # noqa: ANN001
    rows = []
    for name, b, s in cases:
        m, n, share, ctr = cl.time_case(name, b, s, 5, 1.0, gen)
        rows.append({"case": f"{name}:{b}:{s}", "ms": round(m * 1e3, 2), **ctr, "label": label})
        print(f"  [{label}] {name:<20} b{b:<3} {s:4d}: {m * 1e3:8.2f} ms, faults {ctr['faults_mib_per_pass']:6.1f} "
              f"MiB/pass, steal {ctr['steal_share'] or 0:.1%}, others {share or 0:.0%}, canary {ctr['canary_gflops']:.0f} "
              f"GFLOP/s {ctr['canary_copy_gbs']:.1f} GB/s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("history", "fresh", "calibrated", "one"), default="history")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--fillers", type=int, default=len(FILLERS), help="how many fillers to time first")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    gen = torch.Generator().manual_seed(0)
    rows: list[dict] = []
    if args.mode == "one":
        name, b, s = args.case.split(":")
        rows = time_all([(name, int(b), int(s))], gen, "fresh")
        print(json.dumps(rows[0] | {"allocator": allocator_line()}))
        return 0
    t0 = time.perf_counter()
    if args.mode == "fresh":
        for name, b, s in TARGETS:
            out = subprocess.run([sys.executable, __file__, "--mode", "one", "--case", f"{name}:{b}:{s}"],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()
            row = json.loads(out[-1])
            rows.append(row)
            print(f"  [fresh] {row['case']:<28}: {row['ms']:8.2f} ms, faults {row['faults_mib_per_pass']:6.1f} MiB/pass, "
                  f"steal {row['steal_share'] or 0:.1%}, canary {row['canary_gflops']:.0f} GFLOP/s "
                  f"{row['canary_copy_gbs']:.1f} GB/s; {row['allocator']}", flush=True)
    else:
        print("start:", allocator_line(), flush=True)
        if args.mode == "calibrated":
            from fxenergy.calibrate import run_calibration

            tc = time.perf_counter()
            run_calibration(quick=True)
            print(f"in-process quick calibration {time.perf_counter() - tc:.0f} s;", allocator_line(), flush=True)
        rows += time_all(FILLERS[:args.fillers], gen, "filler")
        print("after fillers:", allocator_line(), flush=True)
        rows += time_all(TARGETS, gen, args.mode)
        print("after targets:", allocator_line(), flush=True)
        if args.mode == "history":
            _libc.mallopt(M_MMAP_THRESHOLD, 32 * MIB)
            _libc.mallopt(M_TRIM_THRESHOLD, 64 * MIB)
            print("pinned mmap 32 MiB / trim 64 MiB:", allocator_line(), flush=True)
            rows += time_all(TARGETS, gen, "history+pinned")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
