"""Hardware profile schema: :class:`HardwareProfile`, :class:`CacheLevel` and their validation.

A profile holds peak throughput per dtype (FLOP/s, dense), memory bandwidth (bytes/s) and capacity
(bytes), the cache hierarchy, the number of cores or SMs, clocks (Hz), TDP and idle power (W) and the
per-op launch overhead (s). Every profile says where each figure came from (``sources``) and which
figures are estimates (``estimated``). No torch import: dtypes are accepted as objects or strings.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from fxenergy.errors import UserInputError

if TYPE_CHECKING:
    import torch

__all__ = ["CacheLevel", "HardwareProfile", "DTYPES"]

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

