"""File helpers shared by every writer and reader of fxenergy's JSON files."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fxenergy.errors import UserInputError

__all__ = ["write_atomic", "read_json", "read_package_json", "check_document"]


def write_atomic(path: str | os.PathLike[str], text: str, *, make_parents: bool = True) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it: never a half-written file."""
    path = Path(path).expanduser()
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file is one line naming ``what`` and the path."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{what} {path} not found") from None
    except OSError as e:
        raise UserInputError(f"{what} {path} cannot be read: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserInputError(f"{what} {path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def read_package_json(package: str, *parts: str) -> Any:
    """Parse a JSON file shipped inside ``package``, e.g. ``read_package_json("fxenergy.training", "data",
    "carbon-intensity.json")``: the one reader of the package's own tables. A missing or broken file
    raises (``OSError``, ``ValueError``): it is fxenergy's own data, not the user's."""
    f = resources.files(package)
    for p in parts:
        f = f.joinpath(p)
    return json.loads(f.read_text(encoding="utf-8"))


def check_document(data: Any, what: str, *, schema: str, allowed: Sequence[str], required: Sequence[str]) -> None:
    """Refuse, in one line naming ``what`` and the key, a non-object, another schema, an unknown or a
    missing key."""

    def fail(key: str, problem: str) -> UserInputError:
        return UserInputError(f"{what}: {key}: {problem}")

    if not isinstance(data, Mapping):
        raise fail("<top level>", f"expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != schema:
        raise fail("schema", f"unknown schema {data.get('schema')!r}; this fxenergy reads {schema!r}")
    if unknown := sorted(set(data) - set(allowed)):
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in data:
            raise fail(key, "missing key")
