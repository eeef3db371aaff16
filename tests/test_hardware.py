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
from fxenergy.hardware.detect import _detect_cpu

KiB, MiB, GiB = 2**10, 2**20, 2**30
EXPECTED = {
    "h100-sxm", "h100-pcie", "h200", "a100-40gb-sxm", "a100-80gb-sxm", "a100-40gb-pcie", "a100-80gb-pcie",
    "a30", "v100-sxm2-32gb", "v100-pcie-16gb", "rtx-2080-ti", "rtx-3090", "rtx-3070", "gtx-750-ti", "t4", "l4",
    "xeon-gold-6154", "xeon-gold-5120", "xeon-e5-2630-v4",
}
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
    ],
)
def test_detect_known_gpu(monkeypatch, device, memory, profile):
    _fake_gpu(monkeypatch, name=device, total_memory=memory)
    assert detect_local() == load_profile(profile)


def test_detect_known_gpu_with_other_memory(monkeypatch):
    _fake_gpu(monkeypatch, name="Tesla V100-SXM2-16GB", total_memory=16 * GiB)
    p = detect_local()
    assert p.name == "v100-sxm2-32gb" and p.memory_bytes == 16 * GiB and "memory detected" in p.display_name


def test_detect_unknown_gpu(monkeypatch):
    _fake_gpu(monkeypatch, name="NVIDIA Future GPU", major=9, minor=0, multi_processor_count=100, clock_rate=2_000_000,
              memory_clock_rate=2_000_000, memory_bus_width=4096, L2_cache_size=60 * MiB,
              shared_memory_per_multiprocessor=228 * KiB)
    p = detect_local()
    assert p.kind == "gpu" and p.display_name == "NVIDIA Future GPU (detected)" and p.compute_units == 100
    assert p.peak_flops["fp32"] == 100 * 128 * 2 * 2e9 and p.peak_flops["fp16"] == 100 * 4096 * 2e9
    assert p.memory_bandwidth_bytes_per_s == 2 * 2e9 * 4096 / 8
    assert p.cache("L2").size_bytes == 60 * MiB and "peak_flops" in p.estimated
