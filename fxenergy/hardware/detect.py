"""Local detection: a :class:`HardwareProfile` for this machine's CUDA device or CPU.

torch is imported only inside :func:`detect_local`, and only when a GPU may be asked for.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fxenergy.errors import UserInputError
from fxenergy.hardware.registry import load_profile
from fxenergy.hardware.schema import _LEVELS, CacheLevel, HardwareProfile

__all__ = ["detect_local", "CPU_W_PER_CORE_GUESS"]

# Device-name patterns (lower case, tried in order) -> bundled profile.
_GPU_NAMES: tuple[tuple[str, str], ...] = (
    (r"gh200", "gh200"),
    (r"h200(?!.*nvl)", "h200"),
    (r"h100.*nvl", "h100-nvl"),
    (r"h100.*pcie", "h100-pcie"),
    (r"h100(?!.*nvl)", "h100-sxm"),
    (r"\bb200\b", "b200"),
    (r"a100.*(80gb.*pcie|pcie.*80gb)", "a100-80gb-pcie"),
    (r"a100.*pcie", "a100-40gb-pcie"),
    (r"a100.*80gb", "a100-80gb-sxm"),
    (r"a100", "a100-40gb-sxm"),
    (r"\ba30\b", "a30"),
    (r"\ba10g\b", "a10g"),
    (r"\ba10\b", "a10"),
    (r"\ba40\b", "a40"),
    (r"\bl40s\b", "l40s"),
    (r"v100.*sxm.*16gb", "v100-sxm2-16gb"),
    (r"v100.*sxm", "v100-sxm2-32gb"),
    (r"v100.*32gb", "v100-pcie-32gb"),
    (r"v100", "v100-pcie-16gb"),
    (r"p100", "p100-pcie-16gb"),
    (r"tesla p4\b", "p4"),
    (r"rtx 2080 ti", "rtx-2080-ti"),
    (r"rtx 3090(?! ti)", "rtx-3090"),
    (r"rtx 3070(?! ti)", "rtx-3070"),
    (r"rtx 4090", "rtx-4090"),
    (r"rtx 6000 ada", "rtx-6000-ada"),
    (r"gtx 750 ti", "gtx-750-ti"),
    (r"\bt4\b", "t4"),
    (r"\bl4\b", "l4"),
    (r"mi300x", "mi300x"),  # MI250X is left out: PyTorch sees each of its two dies as a device
)
# Compute capability -> (FP32 lanes per SM, dense fp16 tensor FLOP per SM per clock, fp64:fp32 ratio).
_CC_TABLE: dict[tuple[int, int], tuple[int, int, float]] = {
    (5, 0): (128, 0, 1 / 32), (5, 2): (128, 0, 1 / 32), (6, 0): (64, 0, 1 / 2), (6, 1): (128, 0, 1 / 32),
    (7, 0): (64, 1024, 1 / 2), (7, 5): (64, 1024, 1 / 32), (8, 0): (64, 2048, 1 / 2),
    (8, 6): (128, 1024, 1 / 64), (8, 7): (128, 1024, 1 / 64), (8, 9): (128, 1024, 1 / 64),
    (9, 0): (128, 4096, 1 / 2), (10, 0): (128, 8192, 1 / 2), (12, 0): (128, 1024, 1 / 64),
}
_DETECTED_LAUNCH_S = {"gpu": 5e-6, "cpu": 3e-6}
CPU_W_PER_CORE_GUESS = 6.0
"""TDP per core (W) assumed for a CPU with no RAPL limit and no spec figure (a VM that hides its model number):
server CPUs have 3.5-8 W of TDP per core (Xeon Gold 5120: 105 W / 14 cores = 7.5; EPYC 7763: 280 W / 64 = 4.4).
Marked estimated, so energy on such a profile says it rests on a guess; `fxenergy calibrate` with a readable RAPL
interface replaces it."""


def detect_local(kind: str | None = None) -> HardwareProfile:
    """A profile for this machine: its CUDA device if there is one, else its CPU.

    ``kind`` forces "gpu" (CUDA device 0) or "cpu". A GPU whose name matches a bundled profile gets
    that profile unchanged (memory replaced if the card's differs by more than 15%); any other
    GPU, and every CPU, gets a profile built from what the system reports, with the figures that
    had to be estimated listed in ``estimated`` and "(detected)" in ``display_name``.
    """
    if kind not in (None, "gpu", "cpu"):
        raise UserInputError(f"detect_local kind must be 'gpu', 'cpu' or None, got {kind!r}")
    if kind != "cpu":
        import torch

        if torch.cuda.is_available():
            return _detect_gpu(torch.cuda.get_device_properties(0))
        if kind == "gpu":
            raise UserInputError("no CUDA device is available (torch.cuda.is_available() is False)")
    return _detect_cpu()


def _detect_gpu(props: Any) -> HardwareProfile:
    name = str(props.name)
    lname = name.lower()
    for pattern, profile_name in _GPU_NAMES:
        if re.search(pattern, lname):
            profile = load_profile(profile_name)
            if abs(props.total_memory - profile.memory_bytes) > 0.15 * profile.memory_bytes:
                profile = dataclasses.replace(
                    profile, memory_bytes=int(props.total_memory),
                    display_name=f"{profile.display_name} ({name}, memory detected)",
                    sources={**profile.sources, "memory_bytes": "torch.cuda.get_device_properties"})
            return profile
    cc = (int(props.major), int(props.minor))
    known = [k for k in _CC_TABLE if k <= cc]  # newest architecture not newer than this one
    lanes, tensor, fp64_ratio = _CC_TABLE[max(known)] if known else (128, 0, 1 / 32)
    sms = int(props.multi_processor_count)
    clock = (getattr(props, "clock_rate", 0) or 1_500_000) * 1e3  # kHz -> Hz
    fp32 = sms * lanes * 2 * clock
    flops = {"fp64": fp32 * fp64_ratio, "fp32": fp32}
    if tensor:
        fp16 = sms * tensor * clock / (2 if "geforce" in lname and cc >= (7, 5) else 1)
        flops["fp16"] = fp16
        if cc >= (7, 5):
            flops["int8"] = 2 * sms * tensor * clock
        if cc >= (8, 0):
            flops |= {"bf16": fp16, "tf32": fp16 / 2}
    mem_clock, bus = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    bandwidth = 2 * mem_clock * 1e3 * bus / 8 if mem_clock and bus else fp32 / 20
    caches = []
    if smem := getattr(props, "shared_memory_per_multiprocessor", 0):
        caches.append(CacheLevel("L1", int(smem), "sm", sms))
    if l2 := getattr(props, "L2_cache_size", 0):
        caches.append(CacheLevel("L2", int(l2), "device", 1))
    tdp = _nvml_power_limit_w()
    src = "torch.cuda.get_device_properties"
    return HardwareProfile(
        name=_slug(name) + "-detected", display_name=f"{name} (detected)", kind="gpu",
        vendor="NVIDIA", peak_flops=flops, memory_bandwidth_bytes_per_s=bandwidth,
        memory_bytes=int(props.total_memory), caches=tuple(caches), compute_units=sms,
        compute_unit_kind="sm", clock_hz=clock, tdp_w=tdp, idle_w=None, fp32_cores=sms * lanes,
        kernel_launch_overhead_s=_DETECTED_LAUNCH_S["gpu"],
        sources={
            "peak_flops": f"SMs x per-SM rate of compute capability {cc[0]}.{cc[1]} x clock_rate ({src});"
            " dense; fp16 halved on GeForce (fp32 accumulate)",
            "memory_bandwidth_bytes_per_s": f"2 x memory_clock_rate x memory_bus_width / 8 ({src})"
            if mem_clock and bus else "guessed as fp32 FLOP/s / 20",
            "memory_bytes": src, "caches": f"shared_memory_per_multiprocessor (as L1) and L2_cache_size ({src})",
            "compute_units": src, "clock_hz": f"clock_rate ({src})",
            "fp32_cores": f"SMs x fp32 lanes per SM of compute capability {cc[0]}.{cc[1]}",
            "base_clock_hz": "not detected", "sustained_clock_hz": "not detected", "idle_w": "not detected",
            "tdp_w": "NVML default power limit" if tdp else "unknown (no NVML)",
            "kernel_launch_overhead_s": "typical CUDA launch latency",
        },
        estimated=("peak_flops", "caches", "kernel_launch_overhead_s")
        + (() if mem_clock and bus else ("memory_bandwidth_bytes_per_s",)),
    )


def _nvml_power_limit_w() -> float | None:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetPowerManagementDefaultLimit(pynvml.nvmlDeviceGetHandleByIndex(0)) / 1e3
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML missing or not permitted: TDP stays unknown
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cpu_list(text: str) -> set[int]:
    """Parse a Linux cpu list such as "0-3,8,10-11"."""
    cpus: set[int] = set()
    for part in filter(None, text.strip().split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def _size(text: str) -> int:
    """Parse a sysfs cache size such as "32K" or "24M" (binary units) into bytes."""
    m = re.fullmatch(r"(\d+)\s*([KMG]?)i?B?", text.strip(), re.I)
    if not m:
        raise ValueError(text)
    return int(m[1]) * 1024 ** " KMG".index((m[2] or " ").upper())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _cpu_caches(cpu_dir: Path, allowed: set[int], threads_per_core: int) -> tuple[CacheLevel, ...]:
    """Data/unified caches of the ``allowed`` CPUs from sysfs; instances = distinct sharing sets."""
    found: dict[str, dict[frozenset[int], int]] = {}
    for c in sorted(allowed):
        for idx in sorted((cpu_dir / f"cpu{c}/cache").glob("index[0-9]*")):
            level, ctype, size, shared = (_read(idx / f) for f in ("level", "type", "size", "shared_cpu_list"))
            if level and size and shared and ctype != "Instruction" and f"L{level}" in _LEVELS:
                found.setdefault(f"L{level}", {})[frozenset(_cpu_list(shared))] = _size(size)
    return tuple(
        CacheLevel(level, max(sets.values()), "core" if max(map(len, sets)) <= threads_per_core else "socket",
                   len(sets))
        for level, sets in sorted(found.items())
    )


def _cpu_clock(model: str, info: Mapping[str, str], cpufreq: Path) -> tuple[float, str, bool]:
    """(clock in Hz, where it came from, whether it is a guess): the nominal clock in the model
    name, else cpufreq's base frequency, else its max frequency, else the current "cpu MHz"."""
    if m := re.search(r"@\s*([\d.]+)\s*GHz", model):
        return float(m[1]) * 1e9, "nominal clock in the model name", False
    for f in ("base_frequency", "cpuinfo_max_freq"):
        if (v := _read(cpufreq / f)) and v.isdigit():
            return int(v) * 1e3, f"cpufreq {f}", f != "base_frequency"
    if mhz := info.get("cpu MHz"):
        return float(mhz) * 1e6, "/proc/cpuinfo cpu MHz", True
    return 2e9, "guessed 2 GHz", True


def _rapl_tdp_w(sys: Path, share: float) -> float | None:
    """Sum of the RAPL package power limits (W) times ``share`` (the fraction of cores we may use)."""
    limits = [_read(p / "constraint_0_max_power_uw") or _read(p / "constraint_0_power_limit_uw")
              for p in sorted((sys / "class/powercap").glob("intel-rapl:[0-9]*"))]
    if not limits or not all(v and v.isdigit() for v in limits):
        return None
    return sum(int(v) for v in limits if v) / 1e6 * share


def _detect_cpu(
    proc: Path = Path("/proc"), sys: Path = Path("/sys"), allowed: set[int] | None = None
) -> HardwareProfile:
    """Profile of the CPUs this process may use (``allowed``, default its affinity) from ``proc``
    and ``sys`` (Linux; elsewhere only the core count and guesses)."""
    info: dict[str, str] = {}
    for line in (_read(proc / "cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())  # the first processor's block wins
    model = info.get("model name") or info.get("Model") or platform.processor() or "unknown CPU"
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if allowed is None:
        try:
            allowed = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            allowed = set(range(os.cpu_count() or 1))
    cpu_dir = sys / "devices/system/cpu"
    topo = {(_read(cpu_dir / f"cpu{c}/topology/physical_package_id"), _read(cpu_dir / f"cpu{c}/topology/core_id"))
            for c in allowed}
    known_topo = all(None not in t for t in topo)
    cores, sockets = (len(topo), len({pkg for pkg, _ in topo})) if known_topo else (len(allowed), 1)
    threads_per_core = max(1, len(allowed) // cores)
    quota = (_read(sys / "fs/cgroup/cpu.max") or "max").split()
    if len(quota) == 2 and quota[0] != "max":
        cores = max(1, min(cores, math.ceil(int(quota[0]) / int(quota[1]))))
    estimated = ["peak_flops", "memory_bandwidth_bytes_per_s", "kernel_launch_overhead_s"]

    caches = _cpu_caches(cpu_dir, allowed, threads_per_core)
    if not caches:
        estimated.append("caches")
    clock, clock_src, clock_guessed = _cpu_clock(model, info, cpu_dir / f"cpu{min(allowed)}/cpufreq")
    if clock_guessed:
        estimated.append("clock_hz")
    # clock_hz is the maximum (turbo) clock as in the bundled profiles; the nominal one is the base
    max_khz = _read(cpu_dir / f"cpu{min(allowed)}/cpufreq/cpuinfo_max_freq")
    max_clock = int(max_khz) * 1e3 if max_khz and max_khz.isdigit() and int(max_khz) * 1e3 > clock else None

    # peak: cores x fp32 lanes x 2 (FMA) x 2 FMA units (assumed) x clock; Zen 4 runs AVX-512 on 256-bit pipes
    bits = 512 if "avx512f" in flags else 256 if {"avx2", "avx"} & flags else 128
    simd = {512: "AVX-512", 256: "AVX2/AVX", 128: "128-bit SIMD"}[bits]
    if bits == 512 and info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "25":
        bits, simd = 256, "AVX-512 on 256-bit Zen 4 datapaths"
    fp32 = cores * (bits // 32) * 2 * 2 * clock
    flops = {"fp64": fp32 / 2, "fp32": fp32}
    if {"avx512_bf16", "amx_bf16"} & flags:
        flops["bf16"] = 2 * fp32
    if {"avx512_vnni", "avx_vnni", "amx_int8"} & flags:
        flops["int8"] = 4 * fp32

    mem_kib = re.search(r"MemTotal:\s*(\d+)", _read(proc / "meminfo") or "")
    memory = int(mem_kib[1]) * 1024 if mem_kib else 8 * 2**30
    if (limit := _read(sys / "fs/cgroup/memory.max")) and limit.isdigit():
        memory = min(memory, int(limit))
    if not mem_kib:
        estimated.append("memory_bytes")
    package_cores = int(info.get("cpu cores") or cores) * sockets
    tdp = _rapl_tdp_w(sys, min(1.0, cores / package_cores))
    tdp_src = "RAPL package power limit, scaled to the cores available"
    if tdp is None:  # a guess beats refusing energy: time stays a spec-sheet figure, energy is flagged as estimated
        tdp = CPU_W_PER_CORE_GUESS * cores
        tdp_src = (f"guess: {CPU_W_PER_CORE_GUESS:g} W per core x {cores} (no RAPL limit and no spec figure; server "
                   "CPUs have 3.5-8 W per core)")
    estimated.append("tdp_w")
    vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(info.get("vendor_id", ""))
    return HardwareProfile(
        name=_slug(model) + "-detected", display_name=f"{model}, {cores} cores (detected)", kind="cpu",
        vendor=vendor or info.get("vendor_id") or platform.machine() or "unknown",
        peak_flops=flops, memory_bandwidth_bytes_per_s=min(cores * 12e9, sockets * 300e9), memory_bytes=memory,
        caches=caches, compute_units=cores, compute_unit_kind="core", clock_hz=max_clock or clock, tdp_w=tdp,
        idle_w=None, kernel_launch_overhead_s=_DETECTED_LAUNCH_S["cpu"],
        estimated=(*estimated, "fma_units_per_core"),
        base_clock_hz=None if clock_guessed else clock, simd_width_bits=bits, fma_units_per_core=2,
        threads_per_core=threads_per_core, sockets=sockets,
        sources={
            "compute_units": "physical cores in the CPU affinity (sysfs topology), capped by the cgroup CPU quota",
            "caches": "sysfs cpu*/cache/index* (data and unified caches)" if caches else "not found in sysfs",
            "clock_hz": "cpufreq cpuinfo_max_freq" if max_clock else clock_src,
            "base_clock_hz": "not found (no nominal clock in the model name, no cpufreq base_frequency)"
            if clock_guessed else clock_src,
            "sustained_clock_hz": "not detected (all-core turbo is not exposed by Linux)",
            "idle_w": "not detected",
            "simd_width_bits": f"widest vector extension in /proc/cpuinfo flags ({simd})",
            "fma_units_per_core": "assumed 2 (most server cores since Haswell; Xeon Bronze/Silver and some Gold have 1)",
            "threads_per_core": "CPUs in the affinity per physical core (sysfs topology)",
            "sockets": "distinct physical_package_id in the affinity (sysfs topology)",
            "peak_flops": f"{cores} cores x {bits // 32} fp32 lanes ({simd}) x 2 (FMA) x 2 FMA units (assumed)"
            f" x {clock / 1e9:.2f} GHz ({clock_src}); fp64 half; bf16 2x and int8 4x fp32 with avx512_bf16 / VNNI",
            "memory_bytes": "/proc/meminfo MemTotal, capped by the cgroup memory.max" if mem_kib else "guessed 8 GiB",
            "memory_bandwidth_bytes_per_s": "rough guess: 12 GB/s per core, at most 300 GB/s per socket",
            "tdp_w": tdp_src,
            "kernel_launch_overhead_s": "typical PyTorch eager CPU op dispatch overhead",
        },
    )
