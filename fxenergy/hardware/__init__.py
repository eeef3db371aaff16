"""Hardware profiles: the figures of a device that the energy predictors need.

Split by concern: :mod:`~fxenergy.hardware.schema` (:class:`HardwareProfile`, :class:`CacheLevel`,
validation), :mod:`~fxenergy.hardware.registry` (bundled ``profiles/NAME.json``: list, load, save)
and :mod:`~fxenergy.hardware.detect` (this machine's GPU or CPU). The public names below are loaded
on first use, and none of these modules imports torch at import time (``detect_local`` imports it
only when it may look for a CUDA device), so ``fxenergy hardware list`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fxenergy.hardware.detect import detect_local
    from fxenergy.hardware.registry import list_profiles, load_profile, save_profile
    from fxenergy.hardware.schema import DTYPES, CacheLevel, HardwareProfile

__all__ = [
    "CacheLevel",
    "HardwareProfile",
    "DTYPES",
    "list_profiles",
    "load_profile",
    "save_profile",
    "detect_local",
]

_WHERE = {
    "CacheLevel": "schema", "HardwareProfile": "schema", "DTYPES": "schema",
    "list_profiles": "registry", "load_profile": "registry", "save_profile": "registry",
    "detect_local": "detect",
}


def __getattr__(name: str) -> Any:
    if (module := _WHERE.get(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
