"""The learned GPU model's validated error per device, read from its shipped JSON without importing torch
(``fxenergy hardware show`` must start without it).

The JSON's ``params.validated`` block holds ``devices`` (GPUs the model was validated on: each held out of
its own fit, leave-one-GPU-out on the kernel data or leave-one-model-out on the operator logs) and
``default`` (what to expect on a GPU outside the data: the mean of those errors), each as
``{"error_pct", "basis"}``; ``error_pct`` is a time (duration) error in %.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["expected_error", "device_error", "lookup"]

_PARAMS = Path(__file__).resolve().parents[1] / "predictors" / "params" / "learned-gpu.json"


@lru_cache(maxsize=1)
def _validated() -> dict:
    return json.loads(_PARAMS.read_text())["params"].get("validated", {})


def lookup(validated: Mapping[str, Any], device: str, *, default: bool = True) -> tuple[float, str] | None:
    """``(time error in %, what it was validated on)`` for ``device`` from a ``validated`` block: the device's
    own figure, else (``default``) the figure for a GPU outside the data; None when there is neither."""
    v = validated.get("devices", {}).get(device) or (validated.get("default") if default else None)
    if not v:
        return None
    return float(v.get("error_pct", float("nan"))), str(v.get("basis", "not validated"))


def expected_error(device: str) -> tuple[float, str]:
    """``(expected time error in %, what it was validated on)``: the device's own figure, or the default."""
    return lookup(_validated(), device) or (float("nan"), "not validated")


def device_error(device: str) -> tuple[float, str] | None:
    """The time error validated on ``device`` itself (held out of the fit), or None."""
    return lookup(_validated(), device, default=False)
