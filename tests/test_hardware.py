"""Hardware profiles: bundled data, validation, save/load, local detection."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fxenergy.errors import UserInputError
from fxenergy.hardware import (
    DTYPES,
    HardwareProfile,
    detect_local,
    list_profiles,
    load_profile,
    save_profile,
)
from fxenergy.hardware.detect import CPU_W_PER_CORE_GUESS, _detect_cpu

KiB, MiB, GiB = 2**10, 2**20, 2**30
GPUS = {
    "p4", "p100-pcie-16gb", "v100-pcie-16gb", "v100-pcie-32gb", "v100-sxm2-16gb", "v100-sxm2-32gb", "t4", "a10",
    "a10g", "a40", "l4", "l40s", "rtx-3090", "rtx-4090", "rtx-6000-ada", "a100-40gb-pcie", "a100-80gb-pcie",
    "a100-40gb-sxm", "a100-80gb-sxm", "h100-pcie", "h100-sxm", "h100-nvl", "h200", "gh200", "b200", "mi250x",
    "mi300x", "a30", "rtx-2080-ti", "rtx-3070", "gtx-750-ti",
}
CPUS = {
    "xeon-gold-5120", "xeon-gold-6154", "xeon-e5-2630-v4", "xeon-platinum-8280", "xeon-gold-6248",
    "xeon-platinum-8380", "xeon-platinum-8480p", "epyc-7742", "epyc-7763", "epyc-9654", "apple-m1", "apple-m2",
    "apple-m3", "graviton2", "graviton3",
}
EXPECTED = GPUS | CPUS
PROFILE_DIR = Path(__file__).parents[1] / "fxenergy" / "hardware" / "profiles"


def test_bundled_names():
    assert set(list_profiles()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_profile_is_valid(name):
    p = load_profile(name)
    assert p.name == name and p.display_name
    assert p.compute_unit_kind == {"gpu": "sm", "cpu": "core"}[p.kind]
    assert {"fp32", "fp64"} <= set(p.peak_flops) <= set(DTYPES)
    assert all(v > 0 for v in p.peak_flops.values())
    assert p.peak_flops["fp64"] <= p.peak_flops["fp32"]
    assert all(p.peak_flops[k] >= p.peak_flops["fp32"] for k in ("tf32", "fp16", "bf16", "int8") if k in p.peak_flops)
    for f in ("memory_bandwidth_bytes_per_s", "memory_bytes", "compute_units", "clock_hz", "tdp_w"):
        assert getattr(p, f) > 0, f
    assert 1e-6 <= p.kernel_launch_overhead_s <= 2e-5
    sizes = [c.size_bytes for c in p.caches]
    assert len(sizes) >= 2 and sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert p.caches[0].instances == p.compute_units  # L1 is per core / per SM
    for f in ("peak_flops", "memory_bandwidth_bytes_per_s", "tdp_w", "caches", "compute_units"):
        assert p.source_of(f), f
    assert p.is_estimated("kernel_launch_overhead_s")
    # the file is exactly what save_profile writes, so hand edits stay canonical
    text = (PROFILE_DIR / f"{name}.json").read_text()
    assert text == json.dumps(p.to_dict(), indent=2, ensure_ascii=False) + "\n"


def test_spot_checks():
    a100 = load_profile("a100-80gb-pcie")
    assert a100.memory_bandwidth_bytes_per_s == 1.935e12 and a100.tdp_w == 300
    assert a100.peak_flops_for(torch.float32) == 19.5e12
    assert a100.peak_flops_for("tf32") == 156e12  # the A100 peak of seed 004
    assert a100.peak_flops_for(torch.bfloat16) == 312e12
    assert a100.cache("L2").size_bytes == 40 * MiB and a100.cache("L1").size_bytes == 192 * KiB
    assert load_profile("rtx-2080-ti").peak_flops_for("float32") == 13.45e12  # seed 004: 13.45 TFLOP/s
    for v100 in ("v100-sxm2-32gb", "v100-pcie-16gb"):
        assert load_profile(v100).cache("L2").size_bytes == 6 * MiB  # seed 003 Table 2
    xeon = load_profile("xeon-gold-6154")  # seed 003: dual-socket node, 36 cores
    assert xeon.compute_units == 36 and xeon.kind == "cpu"
    assert [(c.level, c.size_bytes, c.instances) for c in xeon.caches] == [
        ("L1", 32 * KiB, 36), ("L2", 1 * MiB, 36), ("L3", int(24.75 * MiB), 2)]
    assert xeon.peak_flops["fp32"] == 36 * 16 * 2 * 2 * 3.0e9
    assert load_profile("xeon-gold-5120").compute_units == 14


def test_peak_flops_for_fallbacks():
    v100 = load_profile("v100-sxm2-32gb")
    assert v100.peak_flops_for(torch.float16) == 125e12
    assert v100.peak_flops_for(torch.bfloat16) == v100.peak_flops["fp32"]  # no bf16 units: fp32 rate
    assert v100.peak_flops_for("tf32") == v100.peak_flops["fp32"]
    assert v100.peak_flops_for("fp16", tensor_cores=False) == 15.7e12
    assert v100.peak_flops_for(torch.float64) == 7.8e12
    assert load_profile("xeon-gold-6154").peak_flops_for(torch.float16) == 6.912e12
    with pytest.raises(UserInputError, match="complex64"):
        v100.peak_flops_for(torch.complex64)


def test_lookup_is_forgiving_about_case_and_separators():
    assert load_profile("A100_80GB_PCIe") is load_profile("a100-80gb-pcie")


def test_unknown_name():
    with pytest.raises(UserInputError) as e:
        load_profile("a100-80gb-pci")
    msg = str(e.value)
    assert "a100-80gb-pcie" in msg and "see `fxenergy hardware list`" in msg and "\n" not in msg
    with pytest.raises(UserInputError, match="h100-pcie, h100-sxm"):
        load_profile("H100")


def test_round_trip(tmp_path):
    p = load_profile("h100-sxm")
    path = save_profile(p, tmp_path / "sub" / "mine.json")
    assert load_profile(str(path)) == p
    assert [f.name for f in tmp_path.joinpath("sub").iterdir()] == ["mine.json"]  # no temp file left
    assert pickle.loads(pickle.dumps(p)) == p and hash(p) == hash(load_profile("h100-sxm"))
    with pytest.raises(TypeError):
        p.peak_flops["fp32"] = 1.0  # type: ignore[index]


def _write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.pop("memory_bytes"), "memory_bytes: missing key"),
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["peak_flops"].update(fp32="fast"), "peak_flops.fp32: expected a finite number"),
        (lambda d: d["peak_flops"].update(fp8=1e15), "peak_flops.fp8: unknown dtype"),
        (lambda d: d["peak_flops"].pop("fp64"), "peak_flops.fp64: missing"),
        (lambda d: d.update(memory_bandwidth_bytes_per_s=-1), "memory_bandwidth_bytes_per_s: must be a positive"),
        (lambda d: d["caches"][1].update(level="L1"), "caches[1].level: levels must be listed once each"),
        (lambda d: d["caches"][0].pop("instances"), "caches[0].instances: missing or unknown key"),
        (lambda d: d.update(kind="tpu"), "kind: 'tpu' must be one of gpu, cpu"),
        (lambda d: d.update(estimated=["speed"]), "estimated: 'speed' is not a profile field"),
    ],
)
def test_malformed_file_names_file_and_key(tmp_path, edit, key):
    data = load_profile("t4").to_dict()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(UserInputError) as e:
        load_profile(path)
    assert str(e.value) == str(e.value).strip() and "\n" not in str(e.value)
    assert path in str(e.value) and key in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(UserInputError, match="not valid JSON"):
        load_profile(_write(tmp_path, "{nope"))
    with pytest.raises(UserInputError, match="expected a JSON object"):
        load_profile(_write(tmp_path, "[1, 2]"))
    with pytest.raises(UserInputError, match="not found"):
        load_profile(str(tmp_path / "missing.json"))


def test_detect_local_cpu_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    p = detect_local()
    assert p.kind == "cpu" and "(detected)" in p.display_name
    assert 1 <= p.compute_units <= (os.cpu_count() or 1)
    assert p.peak_flops_for(torch.float32) > 0 and p.memory_bytes > 0
    assert {"peak_flops", "memory_bandwidth_bytes_per_s", "kernel_launch_overhead_s"} <= set(p.estimated)
    assert all(p.source_of(f) for f in p.estimated)
    assert HardwareProfile.from_dict(p.to_dict()) == p
    with pytest.raises(UserInputError, match="no CUDA device"):
        detect_local("gpu")


def test_detect_cpu_from_fake_sysfs(tmp_path):
    """A 2-core, 4-thread Xeon Gold 6154 slice: per-core caches and the model-name clock."""
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    proc.mkdir()
    (proc / "cpuinfo").write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6154 CPU @ 3.00GHz\n"
        "cpu MHz\t\t: 1200.000\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq\n")
    (proc / "meminfo").write_text("MemTotal:       1048576 kB\n")
    caches = [("1", "Data", "32K"), ("1", "Instruction", "32K"), ("2", "Unified", "1024K"), ("3", "Unified", "25344K")]
    for cpu in range(4):
        d = sys / f"devices/system/cpu/cpu{cpu}"
        (d / "topology").mkdir(parents=True)
        (d / "topology/physical_package_id").write_text("0\n")
        (d / "topology/core_id").write_text(f"{cpu % 2}\n")
        for i, (level, kind, size) in enumerate(caches):
            idx = d / f"cache/index{i}"
            idx.mkdir(parents=True)
            shared = "0-3" if level == "3" else f"{cpu % 2},{cpu % 2 + 2}"
            for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
                (idx / name).write_text(value + "\n")
    p = _detect_cpu(proc, sys, allowed={0, 1, 2, 3})
    assert p.compute_units == 2 and p.vendor == "Intel" and p.memory_bytes == GiB
    assert [(c.level, c.size_bytes, c.shared_by, c.instances) for c in p.caches] == [
        ("L1", 32 * KiB, "core", 2), ("L2", MiB, "core", 2), ("L3", int(24.75 * MiB), "socket", 1)]
    assert p.clock_hz == 3.0e9 and "clock_hz" not in p.estimated
    assert p.peak_flops["fp32"] == 2 * 16 * 2 * 2 * 3.0e9
    # no /sys/class/powercap (a VM): the TDP is a per-core guess, marked estimated with its source
    assert p.tdp_w == 2 * CPU_W_PER_CORE_GUESS and p.is_estimated("tdp_w") and "guess" in p.source_of("tdp_w")
    rapl = sys / "class/powercap/intel-rapl:0"
    rapl.mkdir(parents=True)
    (rapl / "constraint_0_max_power_uw").write_text("140000000\n")  # 140 W package, 2 of its 14 cores ours
    (proc / "cpuinfo").write_text((proc / "cpuinfo").read_text() + "cpu cores\t: 14\n")
    assert _detect_cpu(proc, sys, allowed={0, 1, 2, 3}).tdp_w == pytest.approx(20.0)
    (sys / "fs/cgroup").mkdir(parents=True)
    (sys / "fs/cgroup/cpu.max").write_text("100000 100000\n")
    assert _detect_cpu(proc, sys, allowed={0, 1, 2, 3}).compute_units == 1


def _fake_gpu(monkeypatch, **props):
    base = dict(total_memory=80 * GiB, major=9, minor=0, multi_processor_count=132)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(**{**base, **props}))


@pytest.mark.parametrize(
    ("device", "memory", "profile"),
    [
        ("NVIDIA H100 80GB HBM3", 79 * GiB, "h100-sxm"),
        ("NVIDIA H100 PCIe", 79 * GiB, "h100-pcie"),
        ("NVIDIA A100 80GB PCIe", 79 * GiB, "a100-80gb-pcie"),
        ("NVIDIA A100-SXM4-40GB", 39 * GiB, "a100-40gb-sxm"),
        ("Tesla V100-PCIE-16GB", 15 * GiB, "v100-pcie-16gb"),
        ("NVIDIA GeForce RTX 2080 Ti", 11 * GiB, "rtx-2080-ti"),
        ("Tesla T4", 15 * GiB, "t4"),
        ("NVIDIA H100 NVL", 94 * GiB, "h100-nvl"),
        ("NVIDIA GH200 480GB", 95 * GiB, "gh200"),
        ("NVIDIA H200", 140 * GiB, "h200"),
        ("NVIDIA B200", 179 * GiB, "b200"),
        ("NVIDIA A10G", 23 * GiB, "a10g"),
        ("NVIDIA A10", 23 * GiB, "a10"),
        ("NVIDIA A40", 47 * GiB, "a40"),
        ("NVIDIA L40S", 47 * GiB, "l40s"),
        ("NVIDIA L4", 23 * GiB, "l4"),
        ("NVIDIA GeForce RTX 4090", 24 * GiB, "rtx-4090"),
        ("NVIDIA RTX 6000 Ada Generation", 48 * GiB, "rtx-6000-ada"),
        ("Tesla V100-SXM2-16GB", 16 * GiB, "v100-sxm2-16gb"),
        ("Tesla V100-SXM2-32GB", 32 * GiB, "v100-sxm2-32gb"),
        ("Tesla V100-PCIE-32GB", 32 * GiB, "v100-pcie-32gb"),
        ("Tesla P100-PCIE-16GB", 16 * GiB, "p100-pcie-16gb"),
        ("Tesla P4", 8 * GiB, "p4"),
        ("AMD Instinct MI300X", 192 * GiB, "mi300x"),
    ],
)
def test_detect_known_gpu(monkeypatch, device, memory, profile):
    """torch's device names (as ``torch.cuda.get_device_name`` reports them) map to the right profile."""
    _fake_gpu(monkeypatch, name=device, total_memory=memory)
    assert detect_local() == load_profile(profile)


def test_detect_known_gpu_with_other_memory(monkeypatch):
    _fake_gpu(monkeypatch, name="NVIDIA A100-SXM4-40GB", total_memory=80 * GiB)
    p = detect_local()
    assert p.name == "a100-40gb-sxm" and p.memory_bytes == 80 * GiB and "memory detected" in p.display_name


def test_detect_unknown_gpu(monkeypatch):
    _fake_gpu(monkeypatch, name="NVIDIA Future GPU", major=9, minor=0, multi_processor_count=100, clock_rate=2_000_000,
              memory_clock_rate=2_000_000, memory_bus_width=4096, L2_cache_size=60 * MiB,
              shared_memory_per_multiprocessor=228 * KiB)
    p = detect_local()
    assert p.kind == "gpu" and p.display_name == "NVIDIA Future GPU (detected)" and p.compute_units == 100
    assert p.peak_flops["fp32"] == 100 * 128 * 2 * 2e9 and p.peak_flops["fp16"] == 100 * 4096 * 2e9
    assert p.memory_bandwidth_bytes_per_s == 2 * 2e9 * 4096 / 8
    assert p.cache("L2").size_bytes == 60 * MiB and "peak_flops" in p.estimated


# --- figures: consistency, sources, estimates ------------------------------------------------------------------

_FIGURES = ("peak_flops", "memory_bandwidth_bytes_per_s", "memory_bytes", "caches", "compute_units", "clock_hz",
            "tdp_w", "idle_w", "kernel_launch_overhead_s", "architecture", "base_clock_hz", "sustained_clock_hz",
            "fp32_cores", "simd_width_bits", "fma_units_per_core", "threads_per_core", "sockets")


@pytest.mark.parametrize("name", sorted(GPUS))
def test_gpu_peak_matches_lanes_times_clock(name):
    """fp32 peak = fp32 lanes x 2 (FMA) x boost clock, within 10%, on every GPU that gives its lane count."""
    p = load_profile(name)
    assert p.kind == "gpu" and p.architecture and p.fp32_cores, "every bundled GPU gives architecture and lanes"
    assert p.fp32_cores % p.compute_units == 0 and p.fp32_cores // p.compute_units in (64, 128)
    assert p.peak_flops["fp32"] == pytest.approx(p.fp32_cores * 2 * p.clock_hz, rel=0.10)
    for clock in (p.base_clock_hz, p.sustained_clock_hz):
        assert clock is None or clock <= p.clock_hz


@pytest.mark.parametrize("name", sorted(CPUS))
def test_cpu_peak_matches_cores_times_simd(name):
    """fp32 peak = cores x clock x simd_width/32 x 2 (FMA) x FMA units, within 10% (base clock, or the
    maximum where no base is published), and the CPU-specific figures are all given."""
    p = load_profile(name)
    assert p.kind == "cpu" and p.architecture
    assert p.simd_width_bits in (128, 256, 512) and p.fma_units_per_core in (1, 2, 4)
    assert p.threads_per_core in (1, 2) and p.sockets in (1, 2)
    clock = p.base_clock_hz or p.clock_hz
    expected = p.compute_units * clock * p.simd_width_bits / 32 * 2 * p.fma_units_per_core
    assert p.peak_flops["fp32"] == pytest.approx(expected, rel=0.10)
    assert "cores x clock x simd_width/32 x 2" in p.source_of("peak_flops") or name in {
        "xeon-gold-5120", "xeon-gold-6154", "xeon-e5-2630-v4"}  # older wording: "N cores x L lanes x 2 (FMA) x ..."
    for c in (p.base_clock_hz, p.sustained_clock_hz):
        assert c is None or c <= p.clock_hz
    l3 = p.cache("L3")
    assert p.cache("L1").shared_by == "core" and (l3 is None or l3.shared_by == "socket")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_figure_has_a_source(name):
    """Every figure the profile gives has a source; every estimate says how it was obtained; a figure left
    null says why (idle power, base and sustained clocks)."""
    p = load_profile(name)
    for field in _FIGURES:
        if getattr(p, field) is not None:
            assert p.source_of(field), f"{name}: {field} has no source"
    for key in p.peak_flops:
        assert p.source_of(f"peak_flops.{key}")
    for key in p.estimated:
        assert p.source_of(key), f"{name}: estimated {key} does not say how it was derived"
    for field in ("idle_w", "sustained_clock_hz", *(("base_clock_hz",) if p.kind == "gpu" else ())):
        if getattr(p, field) is None:
            assert p.source_of(field), f"{name}: {field} is null without a note"


def test_power_limited_cards_have_a_sustained_clock():
    """Issue 11 point 3: the low-power cards carry a sustained clock below boost, marked as an estimate."""
    for name in ("t4", "l4", "p4", "a10", "a40", "l40s", "rtx-6000-ada"):
        p = load_profile(name)
        assert p.sustained_clock_hz is not None and p.sustained_clock_hz < 0.95 * p.clock_hz, name
        assert p.is_estimated("sustained_clock_hz") and p.source_of("sustained_clock_hz")


def test_spot_checks_new_profiles():
    assert load_profile("h100-nvl").memory_bytes == 94 * GiB and load_profile("h100-nvl").peak_flops["fp32"] == 60e12
    assert load_profile("l40s").peak_flops_for(torch.float16) == 362.05e12  # dense, not the sparse 733
    assert load_profile("rtx-4090").peak_flops_for(torch.float16) == 165.2e12  # GeForce: fp32 accumulate
    assert load_profile("p4").peak_flops_for(torch.float16) == 5.5e12  # no fast fp16 on GP104
    spr = load_profile("xeon-platinum-8480p")
    assert spr.memory_bandwidth_bytes_per_s == 8 * 4800e6 * 8 and spr.peak_flops["bf16"] > spr.peak_flops["fp32"]
    assert load_profile("epyc-9654").memory_bandwidth_bytes_per_s == 12 * 4800e6 * 8
    assert load_profile("epyc-7742").cache("L3").total_bytes == 256 * MiB
    for amd in ("mi250x", "mi300x"):
        assert "spec-only" in load_profile(amd).display_name
    assert load_profile("apple-m1").is_estimated("clock_hz")


NEUSIGHT = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpu-kernels-neusight" / "devices"


@pytest.mark.skipif(not NEUSIGHT.is_dir(), reason="../shared/data/gpu-kernels-neusight not present")
@pytest.mark.parametrize(("device", "name"), [
    ("Tesla_P4", "p4"), ("Tesla_P100-PCIE-16GB", "p100-pcie-16gb"), ("Tesla_T4", "t4"),
    ("Tesla_V100-PCIE-32GB", "v100-pcie-32gb"), ("NVIDIA_A100-PCIE-40GB", "a100-40gb-pcie"),
])
def test_cross_check_with_neusight_device_figures(device, name):
    """The spec figures NeuSight describes its GPUs with agree with ours: bandwidth and L2 exactly, fp32 peak
    within 6% (NeuSight uses higher clocks for the P4 and P100: see those profiles' sources), fp32 lanes exactly."""
    ns = json.loads((NEUSIGHT / f"{device}.json").read_text())
    p = load_profile(name)
    assert p.memory_bandwidth_bytes_per_s == ns["Mem_Bw"] * 1e9
    assert p.cache("L2").size_bytes == ns["L2Cache"] * MiB
    assert p.fp32_cores == ns["Num_Sm"] * ns["Core_Per_SM"]
    assert p.peak_flops["fp32"] == pytest.approx(ns["SingleFLOPs"] * 1e9, rel=0.06)


def test_importing_hardware_does_not_import_torch():
    """The package, loading a profile, and `hardware list` / `show` output import no torch."""
    import subprocess
    import sys

    code = (
        "import sys, argparse\n"
        "import fxenergy.hardware as h\n"
        "h.load_profile('t4'); h.list_profiles(); h.HardwareProfile; h.save_profile\n"
        "from fxenergy.cli import _cmd_hardware\n"
        "_cmd_hardware(argparse.Namespace(hw_command='list'))\n"
        "_cmd_hardware(argparse.Namespace(hw_command='show', name='a30', json=False))\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NO-TORCH")


# --- `fxenergy hardware list` / `show` text -------------------------------------------------------------------


def test_show_marks_estimates_and_gives_sources():
    from fxenergy.hardware.describe import ESTIMATE_MARK, render_show

    p = load_profile("t4")
    text = render_show(p)
    lines = {line.split("  ")[1].strip(): line for line in text.splitlines() if line.startswith("  ")}
    assert f" {ESTIMATE_MARK}  " in lines["sustained clock"] and "gpu-kernels-neusight" in lines["sustained clock"]
    assert f" {ESTIMATE_MARK}  " not in lines["peak fp32"] and p.source_of("peak_flops.fp32") in lines["peak fp32"]
    assert "1.015 GHz" in lines["sustained clock"] and "8.1 TFLOP/s" in lines["peak fp32"]
    assert f"{ESTIMATE_MARK} estimated" in text  # the legend
    # the T4 was held out of the learned GPU model's fit (leave-one-GPU-out): its error is a validation
    assert "validated error: not validated" not in text
    assert "learned GPU model (default backend): time error ±" in text and "t4 held out" in text
    other = render_show(load_profile("h100-sxm"))  # no data of this GPU: an expectation, said so
    assert "validated error: not validated" in other and "not validated on this GPU; expected time error ±" in other
    assert "learned GPU model" not in render_show(load_profile("xeon-gold-5120"))
    # a CPU without a validated backend states the CPU duration model's time errors where they were measured
    from fxenergy.perf.validated import cpu_latency_error

    cpu = render_show(load_profile("xeon-gold-6154"))
    spec = cpu_latency_error("spec_sheet", "xeon-gold-6154")
    assert spec is not None and f"expected time error ±{spec['pct']:.0f}% from the spec sheet" in cpu
    assert "CPU durations" not in render_show(load_profile("xeon-gold-5120"))  # its own energy validation instead


def test_validated_error_slot_reads_shipped_blocks(monkeypatch):
    from fxenergy.hardware import describe

    docs = (
        ("fxenergy/perf/gpu-learned.json", {"backend": "learned", "validated": {
            "t4": {"quantity": "duration", "median_pct": 7.5, "mean_pct": 9.0, "worst_pct": 30.0,
                   "on": "leave-one-GPU-out, NeuSight kernels"}}}),
        ("fxenergy/predictors/params/x.json", {"backend": "cpu", "validated": [
            {"hardware": "t4", "median_pct": 12.0}, {"hardware": "a30", "median_pct": 1.0}]}),
        ("fxenergy/predictors/params/y.json", {"backend": "hef", "hardware": "t4",
                                               "validated": {"quantity": "energy", "median_pct": 20.0}}),
        ("fxenergy/predictors/params/z.json", {"backend": "bad", "validated": {"t4": {"median_pct": "n/a"}}}),
    )
    monkeypatch.setattr(describe, "_shipped", lambda: docs)
    monkeypatch.setattr(describe, "_learned", lambda p: None)  # the shipped learned model's own T4 figure aside
    errors = describe.validated_errors("t4")
    assert [(e.backend, e.median_pct) for e in errors] == [("learned", 7.5), ("cpu", 12.0), ("hef", 20.0)]
    text = describe.render_show(load_profile("t4"))
    assert "learned: duration median 7.5%, mean 9.0%, worst 30.0%; leave-one-GPU-out" in text
    assert "validated error: not validated" not in text
    assert "validated learned 8%, cpu 12%, hef 20%" in describe.render_list()


def test_list_flags_kind_vendor_and_spec_only():
    from fxenergy.hardware.describe import render_list

    rows = {line.split()[0]: line.split() for line in render_list().splitlines()[1:] if line and line[0] != " "}
    assert set(list_profiles()) <= set(rows)
    assert rows["mi300x"][1:3] == ["gpu", "AMD"] and rows["mi300x"][-1] == "spec-only"
    assert rows["epyc-9654"][1:3] == ["cpu", "AMD"]
    assert " ".join(rows["a100-80gb-pcie"]).endswith("fitted: hef")  # from the shipped params files
    from fxenergy.perf.validated import device_error

    a30 = device_error("a30")  # held out of the learned GPU model's fit: a validation, which wins over "fitted"
    assert a30 is not None and " ".join(rows["a30"]).endswith(f"validated learned {a30[0]:.0f}%")


def test_detected_profiles_source_every_figure(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = detect_local()
    _fake_gpu(monkeypatch, name="NVIDIA Future GPU", major=9, minor=0, multi_processor_count=100, clock_rate=2_000_000)
    gpu = detect_local()
    for p in (cpu, gpu):
        for field in _FIGURES:
            if getattr(p, field) is not None or field in ("idle_w", "base_clock_hz", "sustained_clock_hz"):
                assert p.source_of(field), f"{p.name}: {field}"
    assert cpu.simd_width_bits in (128, 256, 512) and cpu.is_estimated("fma_units_per_core")
    assert gpu.fp32_cores == 100 * 128
