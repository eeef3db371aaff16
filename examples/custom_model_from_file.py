"""Analyse a model defined in your own file, loaded the way the CLI does: ``path.py:factory``.

    uv run python examples/custom_model_from_file.py
    uv run fxenergy report examples/budget_with_precommit/tiny_cnn.py:build     # the same, from the shell

The factory takes no arguments and returns a module, ``(module, args)`` or ``(module, args, kwargs)``.
"""

from __future__ import annotations

from pathlib import Path

import fxenergy
from fxenergy.models import build_model

SPEC = f"{Path(__file__).resolve().parent / 'budget_with_precommit' / 'tiny_cnn.py'}:build"


def main() -> None:
    built = build_model(SPEC)
    result = fxenergy.annotate(built.model, built.args, example_kwargs=built.kwargs,
                               hardware="a100-80gb-pcie", name="tiny_cnn")
    t = result.totals
    print(f"{result.info['model']}: {t.macs:,} MACs, {t.energy_j * 1e3:.3f} mJ per forward "
          f"({result.info['predictor']} predictor)")
    for g in sorted(result.group("layer"), key=lambda g: g.totals.energy_j or 0.0, reverse=True)[:5]:
        print(f"  {g.key:<12} {g.module_type:<10} {g.totals.energy_j * 1e6:10.2f} µJ")


if __name__ == "__main__":
    main()
