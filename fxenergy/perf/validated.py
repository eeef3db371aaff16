"""The learned GPU model's validated error per device, read from its shipped JSON without importing torch
(``fxenergy hardware show`` must start without it)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["expected_error"]

_PARAMS = Path(__file__).resolve().parents[1] / "predictors" / "params" / "learned-gpu.json"


@lru_cache(maxsize=1)
def _validated() -> dict:
    return json.loads(_PARAMS.read_text())["params"].get("validated", {})


def expected_error(device: str) -> tuple[float, str]:
    """``(expected duration error in %, what it was validated on)``: the device's own figure, or the default."""
    v = _validated().get("devices", {}).get(device) or _validated().get("default", {})
    return float(v.get("error_pct", float("nan"))), str(v.get("basis", "not validated"))
