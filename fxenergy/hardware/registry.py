"""Bundled hardware profiles (``profiles/NAME.json``): list, load by name or file, save."""

from __future__ import annotations

import difflib
import json
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fxenergy._files import read_json, write_atomic
from fxenergy.errors import UserInputError
from fxenergy.hardware.schema import HardwareProfile

__all__ = ["list_profiles", "load_profile", "save_profile"]

_LIST_HINT = "see `fxenergy hardware list`"


def _bundled_dir() -> Any:
    return resources.files("fxenergy.hardware").joinpath("profiles")


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

