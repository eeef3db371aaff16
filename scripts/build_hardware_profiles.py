"""Write the bundled hardware profiles (fxenergy/hardware/profiles/*.json) from the spec tables below.

Each figure carries its source; figures that are derived or not published are listed in the
profile's ``estimated`` with the derivation in ``sources``. Derived figures are computed here, not
typed in: CPU peaks (cores x base clock x SIMD lanes x 2 (FMA) x FMA units), GPU fp64 from the
fp32 figure and the architecture's ratio, dense tensor figures from sparse ones, and sustained
clocks of power-limited GPUs (see :func:`power_rule_clock` and scripts/derive_sustained_clocks.py).

Run ``uv run python scripts/build_hardware_profiles.py`` to rewrite the files (the JSON files are
what fxenergy reads; tests/test_hardware.py checks them). ``--check`` only reports differences.
Profiles not listed here (a30, gtx-750-ti, rtx-2080-ti, rtx-3070, xeon-e5-2630-v4, ...) keep their
figures; :data:`PATCHES` adds the optional fields to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.hardware.schema import HardwareProfile  # noqa: E402

OUT = ROOT / "fxenergy" / "hardware" / "profiles"
KiB, MiB, GiB = 2**10, 2**20, 2**30
T = 1e12
GPU_LAUNCH = "typical CUDA kernel launch latency (~4-6 us); not a spec-sheet figure"
CPU_LAUNCH = "typical PyTorch eager CPU op dispatch overhead (a few us); not a spec-sheet figure"
GIB_NOTE = " (GB read as GiB, as nvidia-smi reports)"
IDLE_GPU = "not published by the vendor"
NO_SUSTAINED = "no published or derived sustained clock (left null): models fall back to clock_hz"

# Power rule for the sustained clock of a power-limited card without kernel data:
#   clock = sibling boost x ((board W / SMs) / (sibling board W / sibling SMs)) ** K
# against a sibling of the same architecture that holds its boost clock. K is fitted on the T4
# (sibling RTX 2080 Ti) by scripts/derive_sustained_clocks.py; on the P4 it over-predicts by 31%.
POWER_RULE_K = 0.57
SUSTAINED_FROM_DATA = {  # MHz, printed by scripts/derive_sustained_clocks.py
    "t4": 1015,
    "p4": 808,
}
DATA_CLOCK_NOTE = (
    "estimate from the NeuSight kernel data (../shared/data/gpu-kernels-neusight): the 99th percentile of"
    " achieved fp32 GEMM FLOP/s over (the V100/A100 fraction of peak, 0.885) over (2 x fp32 lanes);"
    " scripts/derive_sustained_clocks.py"
)
SIBLINGS = {  # name: (board W, SMs, boost MHz, source)
    "rtx-4090": (450, 128, 2520, "NVIDIA Ada GPU Architecture whitepaper (2022), RTX 4090: 450 W, 128 SMs, 2520 MHz"),
    "rtx-3090": (350, 82, 1695, "NVIDIA Ampere GA102 whitepaper (2020), RTX 3090: 350 W, 82 SMs, 1695 MHz"),
}


def power_rule_clock(tdp_w: float, sms: int, sibling: str) -> tuple[float, str]:
    w, n, boost, src = SIBLINGS[sibling]
    ratio = (tdp_w / sms) / (w / n)
    clock = boost * ratio**POWER_RULE_K * 1e6
    note = (f"estimate by the power rule: {sibling} boost {boost} MHz x (({tdp_w:g} W / {sms} SMs) / ({w} W / {n} SMs))"
            f"^{POWER_RULE_K} = {clock / 1e6:.0f} MHz (K fitted on the T4's kernel-data clock, over-predicts the P4"
            f" by 31%: scripts/derive_sustained_clocks.py; {src}); no vendor figure")
    return clock, note


# Cards whose datasheet gives no fp64 figure: fp64 = fp32 / ratio, the CUDA C Programming Guide's
# arithmetic-throughput ratio for the compute capability. name: (ratio, compute capability)
FP64_FROM_FP32: dict[str, tuple[int, str]] = {
    "p4": (32, "6.1"), "a10": (64, "8.6"), "a40": (64, "8.6"), "l40s": (64, "8.9"), "rtx-4090": (64, "8.9"),
    "rtx-6000-ada": (64, "8.9"),
}


def gpu(
    name: str, display: str, arch: str, *, sms: int, lanes: int, boost: float, base: float | None,
    peak: dict[str, float], bw: float, mem_gb: float, l1_kib: int, l2: list[tuple[int, int]], tdp: float,
    sheet: str, whitepaper: str, vendor: str = "NVIDIA", l3: tuple[int, int] | None = None,
    sources: dict[str, str] | None = None, estimated: tuple[str, ...] = (), sustained: tuple[float, str] | None = None,
) -> dict[str, Any]:
    """A GPU profile dict: ``peak`` in TFLOP/s (dense), ``bw`` in GB/s, clocks in MHz, ``l2`` as
    [(MiB per instance, instances)]. A card in :data:`FP64_FROM_FP32` gets its fp64 peak derived (an estimate)."""
    if name in FP64_FROM_FP32:
        fp64, note = ratio(peak["fp32"], *FP64_FROM_FP32[name])
        peak, sources, estimated = {"fp64": fp64, **peak}, {"peak_flops.fp64": note, **(sources or {})}, (*estimated, "peak_flops.fp64")
    caches = [{"level": "L1", "size_bytes": l1_kib * KiB, "shared_by": "sm", "instances": sms}]
    caches += [{"level": "L2", "size_bytes": int(mib * MiB), "shared_by": "device", "instances": k} for mib, k in l2]
    if l3:
        caches.append({"level": "L3", "size_bytes": int(l3[0] * MiB), "shared_by": "device", "instances": l3[1]})
    src = {
        "peak_flops": sheet, "memory_bandwidth_bytes_per_s": sheet,
        "memory_bytes": sheet + (GIB_NOTE if vendor == "NVIDIA" else " (GB read as GiB)"),
        "sustained_clock_hz": NO_SUSTAINED,
        "tdp_w": sheet, "caches": whitepaper, "compute_units": whitepaper, "fp32_cores": whitepaper,
        "clock_hz": whitepaper + " (boost clock)", "architecture": whitepaper,
        "idle_w": IDLE_GPU, "kernel_launch_overhead_s": GPU_LAUNCH,
    }
    src["base_clock_hz"] = whitepaper + " (base clock)" if base is not None else "not published by the vendor (left null)"
    est = ["kernel_launch_overhead_s", *estimated]
    out: dict[str, Any] = {
        "name": name, "display_name": display, "kind": "gpu", "vendor": vendor,
        "peak_flops": {k: v * T for k, v in peak.items()},
        "memory_bandwidth_bytes_per_s": bw * 1e9, "memory_bytes": int(mem_gb * GiB), "caches": caches,
        "compute_units": sms, "compute_unit_kind": "sm", "clock_hz": boost * 1e6, "tdp_w": tdp, "idle_w": None,
        "kernel_launch_overhead_s": 5e-6, "architecture": arch, "base_clock_hz": None if base is None else base * 1e6,
        "fp32_cores": sms * lanes,
    }
    if sustained is not None:
        out["sustained_clock_hz"] = sustained[0]
        src["sustained_clock_hz"] = sustained[1]
        est.append("sustained_clock_hz")
    src.update(sources or {})
    out["sources"], out["estimated"] = src, est
    return out


def ratio(fp32: float, r: int, cc: str) -> tuple[float, str]:
    return fp32 / r, f"fp32 x 1/{r} (CUDA C Programming Guide arithmetic throughput table, compute capability {cc}); not on the sheet"


def data_clock(name: str) -> tuple[float, str]:
    return SUSTAINED_FROM_DATA[name] * 1e6, DATA_CLOCK_NOTE


GPUS: list[dict[str, Any]] = []

# --- Pascal -------------------------------------------------------------------------------------
GPUS.append(gpu(
    "p4", "NVIDIA Tesla P4 8GB", "pascal", sms=20, lanes=128, boost=1063, base=810,
    peak={"fp32": 5.5, "int8": 22.0}, bw=192, mem_gb=8, l1_kib=96, l2=[(2, 1)], tdp=75,
    sheet="NVIDIA Tesla P4 datasheet (2016): 5.5 TFLOP/s fp32, 22 TOPS int8 (dp4a), 8 GB GDDR5 at 192 GB/s, 75 W"
          " (50 W option)",
    whitepaper="NVIDIA Tesla P4 datasheet (2016): 2560 CUDA cores, base 810 / boost 1063 MHz; GP104 (Pascal GP104"
               " whitepaper, 2016): 20 SMs of 128 lanes, 96 KB shared memory per SM, 2 MB L2",
    sources={"peak_flops": "NVIDIA Tesla P4 datasheet (2016); no fp16 entry: GP104 runs fp16 at 1/64 rate, so fp16"
                           " work falls back to the fp32 figure (an upper bound). NeuSight's devices/Tesla_P4.json says"
                           " 5.70 TFLOP/s at 1113 MHz and counts 40 SMs x 64 cores (same 2560 lanes)"},
    sustained=data_clock("p4"),
))
_p100_sheet = ("NVIDIA Tesla P100 PCIe datasheet (2016), 16 GB column: 4.7 fp64 / 9.3 fp32 / 18.7 fp16 (half2)"
               " TFLOP/s, 732 GB/s HBM2, 250 W; no int8 dot-product instructions on GP100")
GPUS.append(gpu(
    "p100-pcie-16gb", "NVIDIA Tesla P100 PCIe 16GB", "pascal", sms=56, lanes=64, boost=1303, base=1126,
    peak={"fp64": 4.7, "fp32": 9.3, "fp16": 18.7}, bw=732, mem_gb=16, l1_kib=64, l2=[(4, 1)], tdp=250,
    sheet=_p100_sheet,
    whitepaper="NVIDIA Tesla P100 whitepaper (2016): GP100 with 56 SMs of 64 fp32 lanes (3584), 64 KB shared"
               " memory per SM, 4 MB L2; P100 PCIe base 1126 / boost 1303 MHz (datasheet). NeuSight's"
               " devices/Tesla_P100-PCIE-16GB.json says 1380 MHz and 9.52 TFLOP/s",
))

# --- Volta --------------------------------------------------------------------------------------
_volta_wp = "NVIDIA Tesla V100 GPU Architecture whitepaper (2017): 80 SMs of 64 fp32 lanes, 128 KB L1/shared per SM, 6 MB L2"
for _name, _disp, _form, _gb, _fp64, _fp32, _tc, _tdp, _boost in (
    ("v100-pcie-32gb", "NVIDIA Tesla V100 PCIe 32GB", "PCIe", 32, 7.0, 14.0, 112.0, 250, 1380),
    ("v100-sxm2-16gb", "NVIDIA Tesla V100 SXM2 16GB", "SXM2", 16, 7.8, 15.7, 125.0, 300, 1530),
):
    GPUS.append(gpu(
        _name, _disp, "volta", sms=80, lanes=64, boost=_boost, base=None,
        peak={"fp64": _fp64, "fp32": _fp32, "fp16": _tc}, bw=900, mem_gb=_gb, l1_kib=128, l2=[(6, 1)], tdp=_tdp,
        sheet=f"NVIDIA Tesla V100 GPU datasheet (2020), V100 {_form} column (fp16 is the tensor-core figure)",
        whitepaper=_volta_wp + f"; V100 {_form} boost {_boost} MHz (datasheet)",
        sources={"base_clock_hz": "not on NVIDIA's datasheet or whitepaper (left null)"},
    ))

# --- Ampere -------------------------------------------------------------------------------------
GPUS.append(gpu(
    "a10", "NVIDIA A10 24GB", "ampere", sms=72, lanes=128, boost=1695, base=885,
    peak={"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0, "int8": 250.0},
    bw=600, mem_gb=24, l1_kib=128, l2=[(6, 1)], tdp=150,
    sheet="NVIDIA A10 Tensor Core GPU datasheet (2021): tensor figures are the sheet's with-sparsity values halved (dense)",
    whitepaper="NVIDIA A10 datasheet (9216 CUDA cores, 150 W) and Ampere GA102 whitepaper (2020): 72 SMs of 128"
               " fp32 lanes, 128 KB L1/shared per SM, 6 MB L2; base 885 / boost 1695 MHz (A10 product brief)",
    sustained=power_rule_clock(150, 72, "rtx-3090"),
))
_a10g_lanes = 80 * 128
_a10g_fp32 = 2 * _a10g_lanes * 1710e6 / T
GPUS.append(gpu(
    "a10g", "NVIDIA A10G 24GB (AWS G5; no NVIDIA datasheet, several figures estimated)", "ampere",
    sms=80, lanes=128, boost=1710, base=None,
    peak={"fp64": _a10g_fp32 / 64, "fp32": _a10g_fp32, "tf32": _a10g_fp32, "fp16": 2 * _a10g_fp32,
          "bf16": 2 * _a10g_fp32, "int8": 8 * _a10g_fp32},
    bw=600, mem_gb=24, l1_kib=128, l2=[(6, 1)], tdp=300,
    sheet="AWS EC2 G5 instance page: NVIDIA A10G, 24 GB GDDR6; 600 GB/s (same memory system as the A10 datasheet)",
    whitepaper="GA102 with 80 SMs (10240 CUDA cores) and boost 1710 MHz as reported by nvidia-smi/deviceQuery on G5"
               " instances (no NVIDIA sheet); Ampere GA102 whitepaper (2020): 128 KB L1/shared per SM, 6 MB L2",
    sources={"peak_flops": "derived, no NVIDIA sheet: fp32 = 80 SMs x 128 lanes x 2 x 1710 MHz; tensor rates of a"
                           " GeForce GA102 (fp16/bf16 with fp32 accumulate 2x fp32, tf32 = fp32, int8 8x fp32);"
                           " fp64 1/64 (compute capability 8.6)",
             "tdp_w": "300 W power limit as nvidia-smi reports on AWS G5 instances; no NVIDIA sheet"},
    estimated=("peak_flops", "compute_units", "fp32_cores", "clock_hz", "tdp_w"),
    sustained=power_rule_clock(300, 80, "rtx-3090"),
))
GPUS.append(gpu(
    "a40", "NVIDIA A40 48GB", "ampere", sms=84, lanes=128, boost=1740, base=1305,
    peak={"fp32": 37.4, "tf32": 74.8, "fp16": 149.7, "bf16": 149.7, "int8": 299.3},
    bw=696, mem_gb=48, l1_kib=128, l2=[(6, 1)], tdp=300,
    sheet="NVIDIA A40 datasheet (2021): dense figures (the sheet lists sparse ones with *)",
    whitepaper="NVIDIA A40 datasheet (10752 CUDA cores, 84 RT cores so 84 SMs) and Ampere GA102 whitepaper (2020):"
               " 128 KB L1/shared per SM, 6 MB L2; base 1305 / boost 1740 MHz (A40 product brief)",
    sustained=power_rule_clock(300, 84, "rtx-3090"),
))
_a100_wp = ("NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 108 SMs of 64 fp32 lanes (6912), 192 KB"
            " L1/shared per SM, 40 MB L2, boost 1410 MHz")

# --- Ada ----------------------------------------------------------------------------------------
_ada_wp = "NVIDIA Ada GPU Architecture whitepaper (2022)"
GPUS.append(gpu(
    "l40s", "NVIDIA L40S 48GB", "ada", sms=142, lanes=128, boost=2520, base=1110,
    peak={"fp32": 91.6, "tf32": 183.0, "fp16": 362.05, "bf16": 362.05, "int8": 733.0},
    bw=864, mem_gb=48, l1_kib=128, l2=[(96, 1)], tdp=350,
    sheet="NVIDIA L40S datasheet (2023): dense figures (the sheet lists sparse ones with *)",
    whitepaper=f"NVIDIA L40S datasheet (18176 CUDA cores, 142 RT cores so 142 SMs, base 1110 / boost 2520 MHz);"
               f" {_ada_wp}: 128 KB L1/shared per SM; AD102 L2 96 MB",
    sustained=power_rule_clock(350, 142, "rtx-4090"),
))
GPUS.append(gpu(
    "rtx-4090", "NVIDIA GeForce RTX 4090", "ada", sms=128, lanes=128, boost=2520, base=2235,
    peak={"fp32": 82.6, "tf32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6},
    bw=1008, mem_gb=24, l1_kib=128, l2=[(72, 1)], tdp=450,
    sheet=f"{_ada_wp}, appendix: RTX 4090 (dense tensor figures; fp16/bf16 with fp32 accumulate, half the fp16-"
          "accumulate rate on GeForce); 24 GB GDDR6X at 1008 GB/s; 450 W total graphics power",
    whitepaper=f"{_ada_wp}, appendix: RTX 4090 has 128 SMs (16384 CUDA cores), 128 KB L1/shared per SM, 72 MB L2,"
               " base 2235 / boost 2520 MHz",
))
_r6k_fp8_sparse = 1457.0
GPUS.append(gpu(
    "rtx-6000-ada", "NVIDIA RTX 6000 Ada Generation 48GB", "ada", sms=142, lanes=128, boost=2505, base=None,
    peak={"fp32": 91.1, "tf32": _r6k_fp8_sparse / 8, "fp16": _r6k_fp8_sparse / 4,
          "bf16": _r6k_fp8_sparse / 4, "int8": _r6k_fp8_sparse / 2},
    bw=960, mem_gb=48, l1_kib=128, l2=[(96, 1)], tdp=300,
    sheet="NVIDIA RTX 6000 Ada Generation datasheet (2022): 91.1 TFLOP/s fp32, 1457 TFLOP/s tensor (fp8 with"
          " sparsity), 48 GB GDDR6 at 960 GB/s, 300 W",
    whitepaper=f"NVIDIA RTX 6000 Ada datasheet (18176 CUDA cores, 142 RT cores so 142 SMs); {_ada_wp}: 128 KB"
               " L1/shared per SM, AD102 96 MB L2; boost 2505 MHz = 91.1 TFLOP/s / (2 x 18176)",
    sources={"peak_flops": "NVIDIA RTX 6000 Ada datasheet (2022): fp32 from the sheet; tensor figures derived from its"
                           " one tensor figure (1457 TFLOP/s fp8 sparse): dense fp8 and int8 = /2, fp16/bf16 (fp32"
                           " accumulate, full rate on professional Ada) = /4, tf32 = /8 (Ada whitepaper ratios)",
             "base_clock_hz": "not on NVIDIA's datasheet (left null)"},
    estimated=("peak_flops.tf32", "peak_flops.fp16", "peak_flops.bf16", "peak_flops.int8"),
    sustained=power_rule_clock(300, 142, "rtx-4090"),
))

# --- Hopper / Blackwell -------------------------------------------------------------------------
_h100_wp = "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): 256 KB L1/shared per SM, 50 MB L2, 128 fp32 lanes per SM"
_nvl_clock = round(60e12 / (2 * 16896) / 1e6)
GPUS.append(gpu(
    "h100-nvl", "NVIDIA H100 NVL 94GB (per GPU of the NVLink pair)", "hopper", sms=132, lanes=128, boost=_nvl_clock,
    base=None,
    peak={"fp64": 30.0, "fp32": 60.0, "tf32": 835.0 / 2, "fp16": 1671.0 / 2, "bf16": 1671.0 / 2, "int8": 3341.0 / 2},
    bw=3900, mem_gb=94, l1_kib=256, l2=[(50, 1)], tdp=400,
    sheet="NVIDIA H100 Tensor Core GPU datasheet (2023), H100 NVL column (per GPU; 350-400 W configurable, the"
          " upper value used); tensor figures are the sheet's with-sparsity values halved (dense)",
    whitepaper=f"{_h100_wp}; H100 NVL uses the full 132-SM configuration of H100 SXM5",
    sources={"clock_hz": f"{_nvl_clock} MHz = fp32 60 TFLOP/s / (2 x 16896 lanes); NVIDIA lists no clock for the NVL",
             "base_clock_hz": "not published (left null)"},
    estimated=("clock_hz",),
))
GPUS.append(gpu(
    "gh200", "NVIDIA GH200 Grace Hopper Superchip, 96GB HBM3 (GPU only)", "hopper", sms=132, lanes=128, boost=1980,
    base=None,
    peak={"fp64": 34.0, "fp32": 67.0, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "int8": 1979.0},
    bw=4000, mem_gb=96, l1_kib=256, l2=[(50, 1)], tdp=1000,
    sheet="NVIDIA GH200 Grace Hopper Superchip datasheet (2023), 96 GB HBM3 at 4 TB/s (a 144 GB HBM3e, 4.9 TB/s"
          " version exists); GPU figures equal to H100 SXM5; tensor figures are the sheet's sparse values halved",
    whitepaper=f"{_h100_wp}; GH200's GPU is the 132-SM H100 with max boost 1980 MHz (as H100 SXM5)",
    sources={"tdp_w": "NVIDIA GH200 datasheet: module power configurable 450-1000 W for CPU + GPU + memory; the upper"
                      " value is used as the GPU's limit (an overestimate of the GPU alone)",
             "base_clock_hz": "not published (left null)"},
    estimated=("tdp_w",),
))
GPUS.append(gpu(
    "b200", "NVIDIA B200 180GB (HGX B200, 1000 W; several figures estimated)", "blackwell", sms=148, lanes=128,
    boost=1980, base=None,
    peak={"fp64": 37.0, "fp32": 80.0, "tf32": 1125.0, "fp16": 2250.0, "bf16": 2250.0, "int8": 4500.0},
    bw=8000, mem_gb=180, l1_kib=256, l2=[(126, 1)], tdp=1000,
    sheet="NVIDIA HGX B200 datasheet (2024), per GPU = 8-GPU totals / 8: 1.44 TB HBM3e, 64 TB/s, fp64 296 TFLOP/s,"
          " tf32/fp16/int8 with sparsity halved (dense); 1000 W per GPU",
    whitepaper="not in an NVIDIA whitepaper: 148 SMs of 128 lanes and ~1980 MHz boost as CUDA deviceQuery and"
               " third-party listings report; 256 KB L1/shared per SM assumed as Hopper",
    sources={"peak_flops.fp32": "NVIDIA Blackwell architecture technical brief (2024), HGX B200 at 1000 W: 80 TFLOP/s"
                                " fp32 (148 SMs x 128 x 2 x 1980 MHz gives 75: the clock is uncertain)",
             "caches": "L2 not published by NVIDIA; third-party figures disagree (65 to 126 MB); 126 MB used (two dies)."
                       " L1 256 KB/SM assumed as Hopper",
             "base_clock_hz": "not published (left null)"},
    estimated=("peak_flops.fp32", "caches", "compute_units", "fp32_cores", "clock_hz"),
))

# --- AMD (spec-only) ----------------------------------------------------------------------------
_SPEC_ONLY = " (spec-only: no measurement behind any fxenergy model)"
GPUS.append(gpu(
    "mi250x", "AMD Instinct MI250X 128GB, both dies (PyTorch sees two devices of half these figures)" + _SPEC_ONLY,
    "cdna2", vendor="AMD", sms=220, lanes=64, boost=1700, base=None,
    peak={"fp64": 47.9, "fp32": 47.9, "fp16": 383.0, "bf16": 383.0, "int8": 383.0},
    bw=3276.8, mem_gb=128, l1_kib=16, l2=[(8, 2)], tdp=560,
    sheet="AMD Instinct MI250X data sheet (2021): fp64/fp32 vector 47.9 TFLOP/s (matrix and packed fp32: 95.7,"
          " not in the schema), fp16/bf16 383 TFLOP/s, int8 383 TOPS, 128 GB HBM2e at 3.2768 TB/s, 500 W (560 W"
          " peak board power used)",
    whitepaper="AMD CDNA 2 architecture whitepaper (2021): 220 compute units (2 GCDs x 110) of 64 lanes (14080 stream"
               " processors), 16 KB L1 per CU, 8 MB L2 per GCD; peak engine clock 1700 MHz (data sheet)",
    sources={"base_clock_hz": "not published (left null)", "idle_w": IDLE_GPU,
             "kernel_launch_overhead_s": "typical GPU kernel launch latency (~5 us, CUDA figure; HIP's not measured here)"},
))
_mi300x_fp32 = 2 * 19456 * 2100e6 / T
GPUS.append(gpu(
    "mi300x", "AMD Instinct MI300X 192GB" + _SPEC_ONLY, "cdna3", vendor="AMD", sms=304, lanes=64, boost=2100,
    base=None,
    peak={"fp64": 81.7, "fp32": _mi300x_fp32, "tf32": 653.7, "fp16": 1307.4, "bf16": 1307.4, "int8": 2614.9},
    bw=5300, mem_gb=192, l1_kib=32, l2=[(4, 8)], l3=(256, 1), tdp=750,
    sheet="AMD Instinct MI300X data sheet (2023): fp64 vector 81.7 TFLOP/s, dense matrix tf32 653.7 / fp16 and bf16"
          " 1307.4 TFLOP/s / int8 2614.9 TOPS, 192 GB HBM3 at 5.3 TB/s, 750 W",
    whitepaper="AMD CDNA 3 architecture whitepaper (2023): 304 compute units (8 XCDs x 38) of 64 lanes (19456 stream"
               " processors), 32 KB L1 per CU, 4 MB L2 per XCD, 256 MB Infinity Cache (as L3); peak engine clock 2100 MHz",
    sources={"peak_flops.fp32": "19456 lanes x 2 x 2100 MHz = 81.7 TFLOP/s: AMD's 163.4 'fp32 vector' figure counts"
                                " packed fp32 (two per lane), which ordinary kernels do not issue; MI250X's 47.9 is"
                                " likewise the unpacked rate",
             "base_clock_hz": "not published (left null)", "idle_w": IDLE_GPU,
             "kernel_launch_overhead_s": "typical GPU kernel launch latency (~5 us, CUDA figure; HIP's not measured here)"},
    estimated=("peak_flops.fp32",),
))

# --- optional fields for the profiles kept from before ------------------------------------------
PATCHES: dict[str, dict[str, Any]] = {
    # name: {field: value}, plus "sources" / "estimated" additions
    "t4": {"architecture": "turing", "fp32_cores": 2560, "base_clock_hz": 585e6,
           "sustained_clock_hz": data_clock("t4"),
           "sources": {"base_clock_hz": "NVIDIA T4 datasheet (2019): base 585 / boost 1590 MHz",
                       "fp32_cores": "NVIDIA T4 datasheet (2019): 2560 CUDA cores",
                       "architecture": "NVIDIA Turing GPU Architecture whitepaper (2018)"}},
    "l4": {"architecture": "ada", "fp32_cores": 7424, "base_clock_hz": 795e6,
           "sustained_clock_hz": power_rule_clock(72, 58, "rtx-4090"),
           "sources": {"base_clock_hz": "NVIDIA L4 datasheet (2023): base 795 / boost 2040 MHz",
                       "fp32_cores": "NVIDIA L4 datasheet (2023): 7424 CUDA cores",
                       "architecture": "NVIDIA Ada GPU Architecture whitepaper (2022)"}},
    "a30": {"architecture": "ampere", "fp32_cores": 3584,
            "base_clock_hz": (930e6, "930 MHz as third-party GPU databases list it (TechPowerUp); NVIDIA's A30"
                                     " datasheet gives only the 1440 MHz boost clock"),
            "sources": {"fp32_cores": "NVIDIA A30 datasheet (2021): 3584 CUDA cores (56 SMs x 64)",
                        "architecture": _a100_wp}},
    "rtx-2080-ti": {"architecture": "turing", "fp32_cores": 4352, "base_clock_hz": 1350e6,
                    "sources": {"fp32_cores": "NVIDIA Turing GPU Architecture whitepaper (2018), appendix: RTX 2080 Ti"
                                              " 4352 CUDA cores, base 1350 / boost 1545 MHz (reference)",
                                "base_clock_hz": "NVIDIA Turing GPU Architecture whitepaper (2018), appendix: RTX 2080"
                                                 " Ti base 1350 MHz (reference)",
                                "architecture": "NVIDIA Turing GPU Architecture whitepaper (2018)"}},
    "rtx-3070": {"architecture": "ampere", "fp32_cores": 5888, "base_clock_hz": 1500e6,
                 "sources": {"fp32_cores": "NVIDIA Ampere GA102 whitepaper (2020), appendix: RTX 3070 (GA104) 5888"
                                           " CUDA cores, base 1500 / boost 1725 MHz",
                             "base_clock_hz": "NVIDIA Ampere GA102 whitepaper (2020), appendix: RTX 3070 base 1500 MHz",
                             "architecture": "NVIDIA Ampere GA102 whitepaper (2020)"}},
    "rtx-3090": {"architecture": "ampere", "fp32_cores": 10496, "base_clock_hz": 1395e6,
                 "sources": {"fp32_cores": "NVIDIA Ampere GA102 whitepaper (2020), appendix: RTX 3090 10496 CUDA"
                                           " cores, base 1395 / boost 1695 MHz",
                             "base_clock_hz": "NVIDIA Ampere GA102 whitepaper (2020), appendix: RTX 3090 base 1395 MHz",
                             "architecture": "NVIDIA Ampere GA102 whitepaper (2020)"}},
    "gtx-750-ti": {"architecture": "maxwell", "fp32_cores": 640, "base_clock_hz": 1020e6,
                   "sources": {"fp32_cores": "NVIDIA GeForce GTX 750 Ti specifications: 640 CUDA cores (5 SMs x 128),"
                                             " base 1020 / boost 1085 MHz",
                               "base_clock_hz": "NVIDIA GeForce GTX 750 Ti specifications: base 1020 MHz",
                               "architecture": "NVIDIA GeForce GTX 750 Ti whitepaper (GM107, Maxwell, 2014)"}},
    "h100-sxm": {"architecture": "hopper", "fp32_cores": 16896,
                 "sources": {"fp32_cores": _h100_wp + "; H100 SXM5: 132 SMs (16896 lanes)", "architecture": _h100_wp,
                             "base_clock_hz": "not published (left null)"}},
    "h100-pcie": {"architecture": "hopper", "fp32_cores": 14592,
                  "sources": {"fp32_cores": _h100_wp + "; H100 PCIe: 114 SMs (14592 lanes)", "architecture": _h100_wp,
                              "base_clock_hz": "not published (left null)"}},
    "h200": {"architecture": "hopper", "fp32_cores": 16896,
             "sources": {"fp32_cores": _h100_wp + "; same 132-SM GH100 as H100 SXM5 (16896 lanes)",
                         "architecture": _h100_wp, "base_clock_hz": "not published (left null)"}},
}
# Same-chip families: one patch each (architecture, lanes, and the whitepaper each comes from).
for _names, _arch, _lanes, _lanes_src, _arch_src in (
    (("v100-pcie-16gb", "v100-sxm2-32gb"), "volta", 5120, _volta_wp + " (5120 lanes)", _volta_wp),
    (("a100-40gb-pcie", "a100-40gb-sxm", "a100-80gb-pcie", "a100-80gb-sxm"), "ampere", 6912, _a100_wp, _a100_wp),
):
    for _n in _names:
        PATCHES[_n] = {"architecture": _arch, "fp32_cores": _lanes,
                       "sources": {"fp32_cores": _lanes_src, "architecture": _arch_src,
                                   "base_clock_hz": "not on NVIDIA's datasheet or whitepaper (left null)"}}

# --- CPUs ---------------------------------------------------------------------------------------
_CPU_IDLE = "not published by the vendor"


def cpu(
    name: str, display: str, arch: str, vendor: str, *, cores: int, threads: int, base: float | None, turbo: float,
    all_core: float | None, simd: int, fma: int, l1d_kib: int, l2_kib: float, l2_shared: bool = False,
    l3: tuple[float, int] | None, channels: int, mts: int, mem_gib: int, tdp: float, sheet: str,
    extra_peak: dict[str, tuple[float, str]] | None = None, sources: dict[str, str] | None = None,
    estimated: tuple[str, ...] = (), mem_note: str, ddr: str,
) -> dict[str, Any]:
    """A CPU package profile. Clocks in GHz; ``l3`` as (MiB per instance, instances); peak fp32 =
    cores x base clock (max clock where no base is published) x simd/32 x 2 (FMA) x fma units."""
    clock_for_peak = base if base is not None else turbo
    fp32 = cores * clock_for_peak * 1e9 * simd / 32 * 2 * fma
    caches = [{"level": "L1", "size_bytes": l1d_kib * KiB, "shared_by": "core", "instances": cores}]
    if l2_shared:
        caches.append({"level": "L2", "size_bytes": int(l2_kib * KiB), "shared_by": "socket", "instances": 1})
    else:
        caches.append({"level": "L2", "size_bytes": int(l2_kib * KiB), "shared_by": "core", "instances": cores})
    if l3:
        caches.append({"level": "L3", "size_bytes": int(l3[0] * MiB), "shared_by": "socket", "instances": l3[1]})
    which = "base" if base is not None else "maximum (no base clock is published)"
    peak_src = (f"computed: peak fp32 = cores x clock x simd_width/32 x 2 (FMA) x FMA units = {cores} x"
                f" {clock_for_peak:g} GHz ({which}) x {simd // 32} x 2 x {fma}; fp64 half. Upper bound: wide-vector"
                " code may run below that clock")
    peak = {"fp64": fp32 / 2, "fp32": fp32}
    src = {
        "peak_flops": peak_src, "memory_bandwidth_bytes_per_s": f"{sheet}: {channels} channels {ddr}-{mts} x 8 bytes",
        "memory_bytes": mem_note, "tdp_w": sheet, "caches": sheet, "compute_units": sheet,
        "clock_hz": sheet + " (maximum turbo)", "threads_per_core": sheet, "architecture": sheet,
        "simd_width_bits": sheet, "fma_units_per_core": sheet, "sockets": "one package per profile",
        "idle_w": _CPU_IDLE, "kernel_launch_overhead_s": CPU_LAUNCH,
    }
    if base is not None:
        src["base_clock_hz"] = sheet + " (base clock)"
    if all_core is not None:
        src["sustained_clock_hz"] = sheet + " (all-core turbo)"
    else:
        src["sustained_clock_hz"] = "all-core turbo not published (left null)"
    for k, (v, s) in (extra_peak or {}).items():
        peak[k] = v
        src[f"peak_flops.{k}"] = s
    src.update(sources or {})
    return {
        "name": name, "display_name": display, "kind": "cpu", "vendor": vendor, "peak_flops": peak,
        "memory_bandwidth_bytes_per_s": channels * mts * 1e6 * 8, "memory_bytes": mem_gib * GiB, "caches": caches,
        "compute_units": cores, "compute_unit_kind": "core", "clock_hz": turbo * 1e9, "tdp_w": tdp, "idle_w": None,
        "kernel_launch_overhead_s": 3e-6, "architecture": arch, "base_clock_hz": None if base is None else base * 1e9,
        "sustained_clock_hz": None if all_core is None else all_core * 1e9, "simd_width_bits": simd,
        "fma_units_per_core": fma, "threads_per_core": threads, "sockets": 1, "sources": src,
        "estimated": ["peak_flops", "kernel_launch_overhead_s", *estimated],
    }


def _dimms(channels: int) -> tuple[int, str]:
    return channels * 32, f"assumed: one 32 GiB DIMM per channel ({channels} channels); a configuration, not a spec"


CPUS: list[dict[str, Any]] = []
_ark = "Intel ARK"
for (_name, _model, _cores, _base, _turbo, _allc, _l3, _tdp) in (
    ("xeon-platinum-8280", "Platinum 8280", 28, 2.7, 4.0, 3.3, 38.5, 205),
    ("xeon-gold-6248", "Gold 6248", 20, 2.5, 3.9, None, 27.5, 150),
):
    _mem, _memnote = _dimms(6)
    _sheet = (f"{_ark} Xeon {_model} ({_cores} cores, {_base} GHz base / {_turbo} GHz turbo, {_l3} MB L3, {_tdp} W,"
              " 6 channels DDR4-2933, 2 AVX-512 FMA units, Hyper-Threading); Cascade Lake-SP: 32 KB L1d, 1 MB L2 per core")
    if _allc:
        _sheet += f"; all-core turbo {_allc} GHz (Intel 2nd Gen Xeon Scalable launch briefing, non-AVX)"
    CPUS.append(cpu(
        _name, f"Intel Xeon {_model} (one socket, {_cores} cores)", "cascade-lake-sp", "Intel", cores=_cores,
        threads=2, base=_base, turbo=_turbo, all_core=_allc, simd=512, fma=2, l1d_kib=32, l2_kib=1024,
        l3=(_l3, 1), channels=6, mts=2933, mem_gib=_mem, mem_note=_memnote, ddr="DDR4", tdp=_tdp, sheet=_sheet,
        extra_peak={"int8": (_cores * _base * 1e9 * 64 * 4,
                             "AVX-512 VNNI: 4x the fp32 rate (64 int8 multiply-adds per 512-bit FMA unit per cycle)")},
        estimated=("memory_bytes",),
    ))
_mem, _memnote = _dimms(8)
CPUS.append(cpu(
    "xeon-platinum-8380", "Intel Xeon Platinum 8380 (one socket, 40 cores)", "ice-lake-sp", "Intel", cores=40,
    threads=2, base=2.3, turbo=3.4, all_core=3.0, simd=512, fma=2, l1d_kib=48, l2_kib=1280, l3=(60, 1), channels=8,
    mts=3200, mem_gib=_mem, mem_note=_memnote, ddr="DDR4", tdp=270,
    sheet="Intel ARK Xeon Platinum 8380 (40 cores, 2.3 GHz base / 3.4 GHz turbo, all-core turbo 3.0 GHz, 60 MB L3,"
          " 270 W, 8 channels DDR4-3200, 2 AVX-512 FMA units); Ice Lake-SP: 48 KB L1d, 1.25 MB L2 per core",
    extra_peak={"int8": (40 * 2.3e9 * 64 * 4, "AVX-512 VNNI: 4x the fp32 rate")},
    estimated=("memory_bytes",),
))
CPUS.append(cpu(
    "xeon-platinum-8480p", "Intel Xeon Platinum 8480+ (one socket, 56 cores)", "sapphire-rapids", "Intel", cores=56,
    threads=2, base=2.0, turbo=3.8, all_core=3.0, simd=512, fma=2, l1d_kib=48, l2_kib=2048, l3=(105, 1), channels=8,
    mts=4800, mem_gib=_mem, mem_note=_memnote, ddr="DDR5", tdp=350,
    sheet="Intel ARK Xeon Platinum 8480+ (56 cores, 2.0 GHz base / 3.8 GHz turbo, all-core turbo 3.0 GHz, 105 MB L3,"
          " 350 W, 8 channels DDR5-4800, 2 AVX-512 FMA units, AMX); Sapphire Rapids: 48 KB L1d, 2 MB L2 per core",
    extra_peak={"bf16": (56 * 2.0e9 * 1024, "AMX: 1024 bf16 FLOP per cycle per core x 56 cores x 2.0 GHz base (Intel"
                                           " AMX documentation); AMX code may run below base clock"),
                "int8": (56 * 2.0e9 * 2048, "AMX: 2048 int8 ops per cycle per core x 56 cores x 2.0 GHz base")},
    estimated=("memory_bytes",),
))
_amd = "AMD EPYC product page"
for (_name, _model, _arch, _cores, _base, _turbo, _allc, _l2, _l3, _l3n, _ch, _mts, _ddr, _tdp) in (
    ("epyc-7742", "7742", "zen2", 64, 2.25, 3.4, None, 512, 16, 16, 8, 3200, "DDR4", 225),
    ("epyc-7763", "7763", "zen3", 64, 2.45, 3.5, None, 512, 32, 8, 8, 3200, "DDR4", 280),
    ("epyc-9654", "9654", "zen4", 96, 2.4, 3.7, 3.55, 1024, 32, 12, 12, 4800, "DDR5", 360),
):
    _mem, _memnote = _dimms(_ch)
    _sheet = (f"{_amd} EPYC {_model} ({_cores} cores, {_base} GHz base / {_turbo} GHz max boost"
              + (f", all-core boost {_allc} GHz" if _allc else "")
              + f", {_l3 * _l3n} MB L3 ({_l3n} x {_l3} MB, one per CCX/CCD), {_tdp} W default TDP, {_ch} channels"
              f" {_ddr}-{_mts}, SMT2); {_arch}: 32 KB L1d and {_l2} KB L2 per core, two 256-bit FMA pipes per core")
    _extra = None
    _src = {"caches": _sheet + "; the L3 is split in one slice per CCX/CCD (instances), shared by that slice's cores"}
    if _arch == "zen4":
        _extra = {"bf16": (2 * _cores * _base * 1e9 * 32, "AVX-512 BF16 (vdpbf16ps): 2x the fp32 rate"),
                  "int8": (4 * _cores * _base * 1e9 * 32, "AVX-512 VNNI: 4x the fp32 rate")}
        _src["simd_width_bits"] = _sheet + "; AVX-512 instructions run on 256-bit datapaths, so 256 is the width used"
    CPUS.append(cpu(
        _name, f"AMD EPYC {_model} (one socket, {_cores} cores)", _arch, "AMD", cores=_cores, threads=2, base=_base,
        turbo=_turbo, all_core=_allc, simd=256, fma=2, l1d_kib=32, l2_kib=_l2, l3=(_l3, _l3n), channels=_ch,
        mts=_mts, mem_gib=_mem, mem_note=_memnote, ddr=_ddr, tdp=_tdp, sheet=_sheet, extra_peak=_extra,
        sources=_src, estimated=("memory_bytes",),
    ))
for (_name, _chip, _arch, _turbo, _l2, _ddr, _mts, _mem) in (
    ("apple-m1", "M1", "firestorm", 3.2, 12, "LPDDR4X", 4266, 16),
    ("apple-m2", "M2", "avalanche", 3.49, 16, "LPDDR5", 6400, 24),
    ("apple-m3", "M3", "everest", 4.05, 16, "LPDDR5", 6400, 24),
):
    _sheet = (f"Apple {_chip} product pages: 4 performance + 4 efficiency cores, {_mem} GB maximum unified memory"
              f" ({_ddr}-{_mts}, 128-bit bus)")
    _est_note = ("not published by Apple; from public microarchitecture analyses (e.g. AnandTech, dougallj):"
                 f" {_turbo} GHz P-core clock, 128 KB L1d per P core, {_l2} MB L2 shared by the P cluster, four"
                 " 128-bit NEON FMA pipes per P core")
    CPUS.append(cpu(
        _name, f"Apple {_chip} (4 performance cores modelled; efficiency cores, AMX unit and GPU not)", _arch,
        "Apple", cores=4, threads=1, base=None, turbo=_turbo, all_core=None, simd=128, fma=4, l1d_kib=128,
        l2_kib=_l2 * 1024, l2_shared=True, l3=None, channels=1, mts=_mts * 2, mem_gib=_mem, ddr=_ddr,
        mem_note=_sheet + " (the largest configuration of the base chip)", tdp=20.0, sheet=_sheet,
        sources={"memory_bandwidth_bytes_per_s": f"{_sheet}: 128-bit bus x {_mts} MT/s / 8 = {16 * _mts / 1e3:.1f} GB/s",
                 "tdp_w": "no Apple figure; ~20 W package power under all-core CPU load reported by reviews (estimate)",
                 "caches": _est_note + "; the system-level cache is left out (it is smaller than the L2)",
                 "clock_hz": _est_note, "simd_width_bits": _est_note, "fma_units_per_core": _est_note,
                 "compute_units": "4 performance cores (Apple product pages); the 4 efficiency cores are left out",
                 "base_clock_hz": "no base clock published (left null)", "architecture": _est_note,
                 "threads_per_core": "no SMT (Apple product pages list cores only)"},
        estimated=("tdp_w", "caches", "clock_hz", "simd_width_bits", "fma_units_per_core"),
    ))
for (_name, _gen, _arch, _clock, _simd, _ddr, _mts, _tdp, _mem, _inst) in (
    ("graviton2", "Graviton2", "neoverse-n1", 2.5, 128, "DDR4", 3200, 110, 256, "m6g.16xlarge"),
    ("graviton3", "Graviton3", "neoverse-v1", 2.6, 256, "DDR5", 4800, 100, 256, "m7g.16xlarge"),
):
    _sheet = (f"AWS {_gen} (AWS re:Invent launch material and EC2 instance pages): 64 {_arch} cores at {_clock} GHz,"
              f" 8 channels {_ddr}-{_mts}, 32 MB L3; Arm {_arch} TRM: 64 KB L1d and 1 MB L2 per core, two"
              f" {_simd}-bit FMA pipes ({'SVE' if _simd == 256 else 'NEON'})")
    CPUS.append(cpu(
        _name, f"AWS {_gen} (64 cores, one socket)", _arch, "AWS", cores=64, threads=1, base=_clock, turbo=_clock,
        all_core=_clock, simd=_simd, fma=2, l1d_kib=64, l2_kib=1024, l3=(32, 1), channels=8, mts=_mts,
        mem_gib=_mem, ddr=_ddr, mem_note=f"EC2 {_inst} (the 64-vCPU general-purpose size): {_mem} GiB", tdp=_tdp,
        sheet=_sheet,
        sources={"tdp_w": f"no AWS figure; {_tdp} W is a guess for 64 Arm cores + uncore (estimate)",
                 "sustained_clock_hz": _sheet + " (fixed clock, no turbo)",
                 "threads_per_core": _sheet + " (one thread per core: no SMT)"},
        estimated=("tdp_w",),
    ))

CPU_PATCHES: dict[str, dict[str, Any]] = {
    "xeon-gold-5120": {"architecture": "skylake-sp", "base_clock_hz": 2.2e9, "clock_hz": 3.2e9, "simd_width_bits": 512,
                       "fma_units_per_core": 1, "threads_per_core": 2, "sockets": 1,
                       # wording shared with the CPU engineer's edit of this file
                       "sources": {
                           "architecture": "Intel ARK Xeon Gold 5120: Skylake-SP (Xeon Scalable, 1st generation)",
                           "base_clock_hz": "Intel ARK Xeon Gold 5120: 2.2 GHz base frequency",
                           "simd_width_bits": "Intel ARK Xeon Gold 5120: Intel AVX-512 instruction set extension",
                           "fma_units_per_core": "Intel ARK Xeon Gold 5120: 1 AVX-512 FMA unit (Gold 5100 parts"
                                                 " except the 5122 have one)",
                           "threads_per_core": "Intel ARK Xeon Gold 5120: 14 cores, 28 threads (Hyper-Threading)",
                           "sockets": "one package: the profile describes one socket (the data's RAPL package domain)",
                       }},
    "xeon-gold-6154": {"architecture": "skylake-sp", "base_clock_hz": 3.0e9, "clock_hz": 3.7e9, "simd_width_bits": 512,
                       "fma_units_per_core": 2, "threads_per_core": 2, "sockets": 2},
    "xeon-e5-2630-v4": {"architecture": "broadwell-ep", "base_clock_hz": 2.2e9, "clock_hz": 3.1e9,
                        "simd_width_bits": 256, "fma_units_per_core": 2, "threads_per_core": 2, "sockets": 1},
}


def patched(name: str, patch: dict[str, Any]) -> dict[str, Any]:
    data = json.loads((OUT / f"{name}.json").read_text())
    patch = dict(patch)
    sources = patch.pop("sources", {})
    for field, value in patch.items():
        if isinstance(value, tuple):  # (value, source) from a derivation: an estimate
            value, note = value
            sources = {**sources, field: note}
            if field not in data["estimated"]:
                data["estimated"].append(field)
        data[field] = value
    if data["kind"] == "gpu":
        sources.setdefault("sustained_clock_hz", NO_SUSTAINED)
        if data.get("base_clock_hz") is None:
            sources.setdefault("base_clock_hz", "not published by the vendor (left null)")
    if data["kind"] == "cpu":
        ark = data["sources"]["compute_units"]
        for field in ("base_clock_hz", "simd_width_bits", "fma_units_per_core", "threads_per_core", "architecture"):
            sources.setdefault(field, ark)
        sources.setdefault("clock_hz", ark + " (maximum turbo)")
        sources.setdefault("sockets", "packages the profile covers (" + data["display_name"] + ")")
        sources.setdefault("sustained_clock_hz", "all-core turbo not published on ARK (left null)")
    # fields named by the patch go after the file's own, in the patch's order (stable on re-runs)
    data["sources"] = {**{k: v for k, v in data["sources"].items() if k not in sources or k == "clock_hz"}, **sources}
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report files that would change, write nothing")
    args = ap.parse_args()
    docs = [*GPUS, *CPUS, *(patched(n, p) for n, p in {**PATCHES, **CPU_PATCHES}.items())]
    changed = 0
    for data in docs:
        profile = HardwareProfile.from_dict(data, origin=data["name"])  # validates
        text = json.dumps(profile.to_dict(), indent=2, ensure_ascii=False) + "\n"
        path = OUT / f"{profile.name}.json"
        if not path.exists() or path.read_text() != text:
            changed += 1
            print(("would write " if args.check else "wrote ") + str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(text)
    print(f"{len(docs)} profiles, {changed} changed")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
