"""Hardware profiles: the figures of a device that the energy predictors need.

A profile is a JSON file (``profiles/NAME.json`` for the bundled ones) holding peak throughput per
dtype (FLOP/s, dense), memory bandwidth (bytes/s) and capacity (bytes), the cache hierarchy, the
number of cores or SMs, clock (Hz), TDP and idle power (W) and the per-op launch overhead (s). Every
profile says where each figure came from (``sources``) and which figures are estimates
(``estimated``). :func:`detect_local` builds a profile for the machine it runs on.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from fxenergy._files import read_json, write_atomic
from fxenergy.errors import UserInputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CacheLevel",
    "HardwareProfile",
    "DTYPES",
    "list_profiles",
    "load_profile",
    "save_profile",
    "detect_local",
]

DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "int8")
"""Keys allowed in ``peak_flops``; ``fp32`` and ``fp64`` are required."""

_KINDS = {"gpu": "sm", "cpu": "core"}  # kind -> compute_unit_kind
_LEVELS = ("L1", "L2", "L3")
_SHARED_BY = ("core", "sm", "device", "socket")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_REDUCED = ("tf32", "fp16", "bf16", "int8")  # fall back to the fp32 figure when absent
_DTYPE_ALIASES = {
    "float64": "fp64", "double": "fp64", "float32": "fp32", "float": "fp32", "float16": "fp16",
    "half": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8", "qint8": "int8",
    "quint8": "int8",
}
_LIST_HINT = "see `fxenergy hardware list`"


@dataclass(frozen=True, slots=True)
class CacheLevel:
    """One cache level: ``instances`` copies of ``size_bytes`` each, each shared by ``shared_by``."""

    level: str
    size_bytes: int
    shared_by: str
    instances: int

    @property
    def total_bytes(self) -> int:
        """Capacity of the level over the whole device (bytes)."""
        return self.size_bytes * self.instances


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """Figures of one device (a GPU, or a CPU package/node); units are in the field names.

    ``peak_flops`` maps a dtype key of :data:`DTYPES` to dense peak FLOP/s (no sparsity; tensor-core
    figures for fp16/bf16/tf32/int8 on GPUs, the non-tensor figure for fp32 and fp64). ``caches``
    run from the lowest level up. ``sources`` maps a field (or ``field.key``) to where its value
    came from; ``estimated`` lists the fields (or ``field.key``) that are estimates, not spec-sheet
    values. Instances are immutable, hashable and picklable.
    """

    name: str
    display_name: str
    kind: str
    vendor: str
    peak_flops: Mapping[str, float]
    memory_bandwidth_bytes_per_s: float
    memory_bytes: int
    caches: tuple[CacheLevel, ...]
    compute_units: int
    compute_unit_kind: str
    clock_hz: float
    tdp_w: float | None
    idle_w: float | None
    kernel_launch_overhead_s: float
    sources: Mapping[str, str]
    estimated: tuple[str, ...]
    # Optional figures that finer duration and power models read; None where not known.
    architecture: str | None = None  # e.g. "ampere", "hopper", "skylake-sp", "zen4"
    base_clock_hz: float | None = None  # guaranteed clock (GPU base, CPU base frequency)
    sustained_clock_hz: float | None = None  # clock held under sustained load (power-limited cards, all-core turbo)
    fp32_cores: int | None = None  # GPU: CUDA cores / stream processors (fp32 lanes); CPU: None
    simd_width_bits: int | None = None  # CPU: widest vector unit (256 for AVX2, 512 for AVX-512, 128 for NEON)
    fma_units_per_core: int | None = None  # CPU: FMA pipes per core at that width
    threads_per_core: int | None = None  # CPU: hardware threads per core (SMT)
    sockets: int | None = None  # CPU: packages the profile covers

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak_flops", MappingProxyType(dict(self.peak_flops)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "caches", tuple(self.caches))
        object.__setattr__(self, "estimated", tuple(self.estimated))
        if (problem := _check(self)) is not None:
            raise UserInputError(f"hardware profile {self.name!r}: {problem[0]}: {problem[1]}")

    def __hash__(self) -> int:
        return hash((self.name, self.display_name, self.clock_hz, self.memory_bytes))

    def __reduce__(self) -> tuple[Callable[..., HardwareProfile], tuple[dict[str, Any]]]:
        return HardwareProfile.from_dict, (self.to_dict(),)

    @property
    def is_gpu(self) -> bool:
        """True for a GPU profile."""
        return self.kind == "gpu"

    def cache(self, level: str) -> CacheLevel | None:
        """The cache level named ``level`` ("L1", "L2", "L3"), or None if the device has none."""
        return next((c for c in self.caches if c.level == level), None)

    def peak_flops_for(self, dtype: torch.dtype | str, *, tensor_cores: bool = True) -> float:
        """Dense peak throughput (FLOP/s, or op/s for int8) for ``dtype``.

        ``dtype`` is a torch dtype or a key of :data:`DTYPES` (also "float32", "half", ...).
        fp32 always gives the fp32 (non-tensor) figure: ask for "tf32" explicitly. A reduced
        precision the device has no figure for (bf16 on a V100, fp16 on a CPU) gives the fp32
        figure, since the work then runs at fp32 rate. With ``tensor_cores=False`` a GPU's
        tf32/fp16/bf16/int8 give the fp32 CUDA-core figure, a lower bound.
        """
        key = _dtype_key(dtype)
        if key in _REDUCED and (key not in self.peak_flops or (self.is_gpu and not tensor_cores)):
            key = "fp32"
        return float(self.peak_flops[key])

    def source_of(self, field: str) -> str | None:
        """Where ``field`` (a field name or ``"peak_flops.fp16"``-style key) came from, or None."""
        if field in self.sources:
            return self.sources[field]
        base = field.split(".", 1)[0]
        if base not in _FIELDS:
            raise UserInputError(f"unknown hardware profile field {field!r}; fields: {', '.join(_FIELDS)}")
        return self.sources.get(base)

    def is_estimated(self, field: str) -> bool:
        """True if ``field`` (or ``field.key``, or its parent field) is an estimate."""
        return field in self.estimated or field.split(".", 1)[0] in self.estimated

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the bundled file layout (numbers that are whole become ints)."""
        out: dict[str, Any] = {}
        for f in _FIELDS:
            value = getattr(self, f)
            if value is None and (f in _OPTIONAL_NUMBERS or f in _OPTIONAL_INTEGERS or f == "architecture"):
                continue  # optional figures the profile does not know are left out of the file
            if f == "peak_flops":
                value = {k: _num(value[k]) for k in DTYPES if k in value}
            elif f == "caches":
                value = [dataclasses.asdict(c) for c in value]
            elif f == "sources":
                value = dict(value)
            elif f == "estimated":
                value = list(value)
            elif isinstance(value, float):
                value = _num(value)
            out[f] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "<dict>") -> HardwareProfile:
        """Build and validate a profile from :meth:`to_dict` output.

        Raises :class:`~fxenergy.errors.UserInputError` naming ``origin`` (a file path) and the
        bad key on a missing, unknown or ill-typed key or an out-of-range value.
        """

        def fail(key: str, problem: str) -> UserInputError:
            return UserInputError(f"hardware profile {origin}: {key}: {problem}")

        if not isinstance(data, Mapping):
            raise fail("<top level>", f"expected a JSON object, got {type(data).__name__}")
        if unknown := sorted(set(data) - set(_FIELDS)):
            raise fail(unknown[0], f"unknown key (allowed: {', '.join(_FIELDS)})")
        data = {**_OPTIONAL, **data}
        if missing := [f for f in _FIELDS if f not in data]:
            raise fail(missing[0], "missing key")

        def number(key: str, value: Any, *, integer: bool = False, nullable: bool = False) -> Any:
            if value is None and nullable:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise fail(key, f"expected a finite number, got {value!r}")
            if integer:
                if value != int(value):
                    raise fail(key, f"expected a whole number, got {value!r}")
                return int(value)
            return float(value)

        def text(key: str, value: Any) -> str:
            if not isinstance(value, str):
                raise fail(key, f"expected a string, got {value!r}")
            return value

        def mapping(key: str, value: Any) -> Mapping[str, Any]:
            if not isinstance(value, Mapping):
                raise fail(key, f"expected an object, got {value!r}")
            return value

        kw: dict[str, Any] = {f: text(f, data[f]) for f in _TEXT_FIELDS}
        peak = mapping("peak_flops", data["peak_flops"])
        kw["peak_flops"] = {k: number(f"peak_flops.{k}", v) for k, v in peak.items()}
        for f in ("memory_bandwidth_bytes_per_s", "clock_hz", "kernel_launch_overhead_s"):
            kw[f] = number(f, data[f])
        kw["memory_bytes"] = number("memory_bytes", data["memory_bytes"], integer=True)
        kw["compute_units"] = number("compute_units", data["compute_units"], integer=True)
        kw["tdp_w"] = number("tdp_w", data["tdp_w"], nullable=True)
        kw["idle_w"] = number("idle_w", data["idle_w"], nullable=True)
        for f in _OPTIONAL_NUMBERS:
            kw[f] = number(f, data[f], nullable=True)
        for f in _OPTIONAL_INTEGERS:
            kw[f] = number(f, data[f], integer=True, nullable=True)
        kw["architecture"] = None if data["architecture"] is None else text("architecture", data["architecture"])
        kw["sources"] = {k: text(f"sources.{k}", v) for k, v in mapping("sources", data["sources"]).items()}
        if not isinstance(data["estimated"], list):
            raise fail("estimated", f"expected a list of field names, got {data['estimated']!r}")
        kw["estimated"] = tuple(text(f"estimated[{i}]", v) for i, v in enumerate(data["estimated"]))
        if not isinstance(data["caches"], list):
            raise fail("caches", f"expected a list, got {data['caches']!r}")
        caches = []
        for i, c in enumerate(data["caches"]):
            c = mapping(f"caches[{i}]", c)
            if bad := sorted(set(c) ^ _CACHE_KEYS):
                raise fail(f"caches[{i}].{bad[0]}", f"missing or unknown key (need {', '.join(sorted(_CACHE_KEYS))})")
            caches.append(CacheLevel(
                level=text(f"caches[{i}].level", c["level"]),
                size_bytes=number(f"caches[{i}].size_bytes", c["size_bytes"], integer=True),
                shared_by=text(f"caches[{i}].shared_by", c["shared_by"]),
                instances=number(f"caches[{i}].instances", c["instances"], integer=True),
            ))
        kw["caches"] = tuple(caches)
        if (problem := _check(SimpleNamespace(**kw))) is not None:
            raise fail(*problem)
        return cls(**kw)


_FIELDS = tuple(f.name for f in dataclasses.fields(HardwareProfile))
_OPTIONAL_NUMBERS = ("base_clock_hz", "sustained_clock_hz")
_OPTIONAL_INTEGERS = ("fp32_cores", "simd_width_bits", "fma_units_per_core", "threads_per_core", "sockets")
_OPTIONAL: dict[str, Any] = {"idle_w": None, "sources": {}, "estimated": [], "architecture": None,
                             **dict.fromkeys(_OPTIONAL_NUMBERS + _OPTIONAL_INTEGERS)}
_TEXT_FIELDS = ("name", "display_name", "kind", "vendor", "compute_unit_kind")
_CACHE_KEYS = {f.name for f in dataclasses.fields(CacheLevel)}


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() and abs(x) < 2**63 else x


def _check(p: Any) -> tuple[str, str] | None:
    """First problem with a profile's values as (key, message), or None."""

    def positive(x: Any) -> bool:
        return x is not None and math.isfinite(x) and x > 0

    if not _NAME_RE.match(p.name):
        return "name", f"{p.name!r} must be lower-case letters, digits, '.' and '-'"
    if not p.display_name.strip():
        return "display_name", "must not be empty"
    if p.kind not in _KINDS:
        return "kind", f"{p.kind!r} must be one of {', '.join(_KINDS)}"
    if p.compute_unit_kind != _KINDS[p.kind]:
        return "compute_unit_kind", f"{p.compute_unit_kind!r} must be {_KINDS[p.kind]!r} for a {p.kind}"
    for key in p.peak_flops:
        if key not in DTYPES:
            return f"peak_flops.{key}", f"unknown dtype (allowed: {', '.join(DTYPES)})"
        if not positive(p.peak_flops[key]):
            return f"peak_flops.{key}", f"must be a positive number of FLOP/s, got {p.peak_flops[key]!r}"
    for key in ("fp32", "fp64"):
        if key not in p.peak_flops:
            return f"peak_flops.{key}", "missing (fp32 and fp64 are required)"
    for f in ("memory_bandwidth_bytes_per_s", "memory_bytes", "compute_units", "clock_hz"):
        if not positive(getattr(p, f)):
            return f, f"must be a positive number, got {getattr(p, f)!r}"
    for f in ("tdp_w", "idle_w"):
        if getattr(p, f) is not None and not positive(getattr(p, f)):
            return f, f"must be a positive number of watts or null, got {getattr(p, f)!r}"
    for f in (*_OPTIONAL_NUMBERS, *_OPTIONAL_INTEGERS):
        if getattr(p, f, None) is not None and not positive(getattr(p, f)):
            return f, f"must be a positive number or null, got {getattr(p, f)!r}"
    if not (math.isfinite(p.kernel_launch_overhead_s) and 0 <= p.kernel_launch_overhead_s < 1):
        return "kernel_launch_overhead_s", f"must be in [0, 1) seconds, got {p.kernel_launch_overhead_s!r}"
    last = -1
    for i, c in enumerate(p.caches):
        if c.level not in _LEVELS:
            return f"caches[{i}].level", f"{c.level!r} must be one of {', '.join(_LEVELS)}"
        if _LEVELS.index(c.level) <= last:
            return f"caches[{i}].level", "levels must be listed once each, from L1 up"
        last = _LEVELS.index(c.level)
        if c.shared_by not in _SHARED_BY:
            return f"caches[{i}].shared_by", f"{c.shared_by!r} must be one of {', '.join(_SHARED_BY)}"
        for f in ("size_bytes", "instances"):
            if not positive(getattr(c, f)):
                return f"caches[{i}].{f}", f"must be a positive whole number, got {getattr(c, f)!r}"
    for key in (*p.sources, *p.estimated):
        base, _, sub = key.partition(".")
        if base not in _FIELDS or (sub and base != "peak_flops"):
            return "sources" if key in p.sources else "estimated", f"{key!r} is not a profile field"
    return None


def _dtype_key(dtype: Any) -> str:
    key = str(dtype).lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise UserInputError(f"no peak throughput for dtype {dtype!r}; known: {', '.join(DTYPES)}")
    return key


# --- bundled profiles, loading and saving -------------------------------------------------------


def _bundled_dir() -> Any:
    return resources.files(__name__).joinpath("profiles")


def list_profiles() -> list[str]:
    """Names of the bundled profiles, sorted."""
    return sorted(p.name[:-5] for p in _bundled_dir().iterdir() if p.name.endswith(".json"))


@cache
def _load_bundled(name: str) -> HardwareProfile:
    data = read_json(_bundled_dir().joinpath(f"{name}.json"), "hardware profile")
    return HardwareProfile.from_dict(data, origin=f"fxenergy/hardware/profiles/{name}.json")


def load_profile(name_or_path: str | os.PathLike[str]) -> HardwareProfile:
    """A bundled profile by name (case-insensitive; "_" or " " read as "-"), or a JSON file's.

    Anything ending in ``.json`` or containing a path separator is read as a file written by
    :func:`save_profile`. Raises :class:`~fxenergy.errors.UserInputError` for an unknown name
    (with close matches), a missing file or a malformed one.
    """
    text = os.fspath(name_or_path)
    if text.lower().endswith(".json") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        return HardwareProfile.from_dict(read_json(path, "hardware profile file"), origin=str(path))
    key = re.sub(r"[\s_]+", "-", text.strip().lower())
    names = list_profiles()
    if key in names:
        return _load_bundled(key)
    close = [n for n in names if key and key in n] or difflib.get_close_matches(key, names, n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close[:4])}?" if close else ""
    raise UserInputError(f"unknown hardware profile {text!r}{hint} ({_LIST_HINT})")


def save_profile(profile: HardwareProfile, path: str | os.PathLike[str]) -> Path:
    """Write ``profile`` as JSON to ``path`` atomically (temp file in the same folder + rename).

    Creates missing parent folders; returns the path written.
    """
    return write_atomic(path, json.dumps(profile.to_dict(), indent=2, ensure_ascii=False) + "\n")


# --- local detection ----------------------------------------------------------------------------

# Device-name patterns (lower case, tried in order) -> bundled profile.
_GPU_NAMES: tuple[tuple[str, str], ...] = (
    (r"h200(?!.*nvl)", "h200"),
    (r"h100.*pcie", "h100-pcie"),
    (r"h100(?!.*nvl)", "h100-sxm"),
    (r"a100.*(80gb.*pcie|pcie.*80gb)", "a100-80gb-pcie"),
    (r"a100.*pcie", "a100-40gb-pcie"),
    (r"a100.*80gb", "a100-80gb-sxm"),
    (r"a100", "a100-40gb-sxm"),
    (r"\ba30\b", "a30"),
    (r"v100.*sxm", "v100-sxm2-32gb"),
    (r"v100", "v100-pcie-16gb"),
    (r"rtx 2080 ti", "rtx-2080-ti"),
    (r"rtx 3090(?! ti)", "rtx-3090"),
    (r"rtx 3070(?! ti)", "rtx-3070"),
    (r"gtx 750 ti", "gtx-750-ti"),
    (r"\bt4\b", "t4"),
    (r"\bl4\b", "l4"),
)
# Compute capability -> (FP32 lanes per SM, dense fp16 tensor FLOP per SM per clock, fp64:fp32 ratio).
_CC_TABLE: dict[tuple[int, int], tuple[int, int, float]] = {
    (5, 0): (128, 0, 1 / 32), (5, 2): (128, 0, 1 / 32), (6, 0): (64, 0, 1 / 2), (6, 1): (128, 0, 1 / 32),
    (7, 0): (64, 1024, 1 / 2), (7, 5): (64, 1024, 1 / 32), (8, 0): (64, 2048, 1 / 2),
    (8, 6): (128, 1024, 1 / 64), (8, 7): (128, 1024, 1 / 64), (8, 9): (128, 1024, 1 / 64),
    (9, 0): (128, 4096, 1 / 2), (10, 0): (128, 8192, 1 / 2), (12, 0): (128, 1024, 1 / 64),
}
_DETECTED_LAUNCH_S = {"gpu": 5e-6, "cpu": 3e-6}


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
        compute_unit_kind="sm", clock_hz=clock, tdp_w=tdp, idle_w=None,
        kernel_launch_overhead_s=_DETECTED_LAUNCH_S["gpu"],
        sources={
            "peak_flops": f"SMs x per-SM rate of compute capability {cc[0]}.{cc[1]} x clock_rate ({src});"
            " dense; fp16 halved on GeForce (fp32 accumulate)",
            "memory_bandwidth_bytes_per_s": f"2 x memory_clock_rate x memory_bus_width / 8 ({src})"
            if mem_clock and bus else "guessed as fp32 FLOP/s / 20",
            "memory_bytes": src, "caches": f"shared_memory_per_multiprocessor (as L1) and L2_cache_size ({src})",
            "compute_units": src, "clock_hz": f"clock_rate ({src})",
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
    if tdp is not None:
        estimated.append("tdp_w")
    vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(info.get("vendor_id", ""))
    return HardwareProfile(
        name=_slug(model) + "-detected", display_name=f"{model}, {cores} cores (detected)", kind="cpu",
        vendor=vendor or info.get("vendor_id") or platform.machine() or "unknown",
        peak_flops=flops, memory_bandwidth_bytes_per_s=min(cores * 12e9, sockets * 300e9), memory_bytes=memory,
        caches=caches, compute_units=cores, compute_unit_kind="core", clock_hz=clock, tdp_w=tdp, idle_w=None,
        kernel_launch_overhead_s=_DETECTED_LAUNCH_S["cpu"], estimated=tuple(estimated),
        sources={
            "compute_units": "physical cores in the CPU affinity (sysfs topology), capped by the cgroup CPU quota",
            "caches": "sysfs cpu*/cache/index* (data and unified caches)" if caches else "not found in sysfs",
            "clock_hz": clock_src,
            "peak_flops": f"{cores} cores x {bits // 32} fp32 lanes ({simd}) x 2 (FMA) x 2 FMA units (assumed)"
            f" x {clock / 1e9:.2f} GHz ({clock_src}); fp64 half; bf16 2x and int8 4x fp32 with avx512_bf16 / VNNI",
            "memory_bytes": "/proc/meminfo MemTotal, capped by the cgroup memory.max" if mem_kib else "guessed 8 GiB",
            "memory_bandwidth_bytes_per_s": "rough guess: 12 GB/s per core, at most 300 GB/s per socket",
            "tdp_w": "RAPL package power limit, scaled to the cores available" if tdp else "unknown (no RAPL limit)",
            "kernel_launch_overhead_s": "typical PyTorch eager CPU op dispatch overhead",
        },
    )
