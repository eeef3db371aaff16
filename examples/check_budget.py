"""Run ``fxenergy check`` on examples/budget_with_precommit/: once as shipped, once with a wider model.

    uv run python examples/check_budget.py

Both runs work on a copy in a temporary directory, whose baseline is first refreshed with
``--update-baseline`` (so the example holds whatever predictor version runs it). The first run holds
(exit 0). The second widens the middle convolution of ``tiny_cnn.py`` from 32 to 256 channels: it
goes over its budget (exit 1) and lists the layers that grew most against the baseline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "budget_with_precommit"


def check(directory: Path, *args: str) -> int:
    """``fxenergy check`` in ``directory``; its output goes to this script's stdout."""
    p = subprocess.run([sys.executable, "-m", "fxenergy", "check", *args], cwd=directory, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    print(f"exit code {p.returncode}\n")
    return p.returncode


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(PROJECT, copy)
        if check(copy, "--update-baseline") != 0 or check(copy) != 0:
            return 1
        model = copy / "tiny_cnn.py"
        model.write_text(model.read_text().replace("WIDTH = 32", "WIDTH = 256"))
        return 0 if check(copy) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
