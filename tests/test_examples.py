"""Every script in examples/ runs and prints something.

Each runs as ``__main__`` in this test process (``runpy``, with its own directory first on ``sys.path``
and its path as ``sys.argv[0]``, as ``python examples/NAME.py`` sets them): a fresh interpreter per
example spent 4-7 s of each test importing torch and transformers again. A script that exits non-zero
(``sys.exit(main())``) fails the test. The scripts that start commands (check_budget.py runs ``python -m
fxenergy check``) still start them as separate processes.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.setattr(sys, "argv", [str(path)])
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        assert e.code in (0, None), f"{path.name} exited with {e.code}"
    out = capsys.readouterr().out
    assert out.strip()
