"""A PNG bar chart of the most expensive groups (matplotlib, an optional extra: ``fxenergy[plot]``)."""

from __future__ import annotations

import os

from fxenergy.errors import UserInputError
from fxenergy.result import Result

__all__ = ["save_plot"]


def save_plot(result: Result, path: str | os.PathLike[str], top: int = 15, *, by: str = "layer",
              depth: int | None = None) -> None:
    """Save a horizontal bar chart of the ``top`` groups by energy (J), or by FLOPs + elementwise
    FLOPs when no predictor ran, to ``path`` (format from its suffix, e.g. ``.png``)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("plots need matplotlib: pip install 'fxenergy[plot]' (or uv add matplotlib)") from None
    if top <= 0:
        raise UserInputError(f"top must be a positive integer, got {top}")
    has_energy = result.totals.energy_j is not None
    groups = result.group(by, depth)

    def weight(g) -> float:  # noqa: ANN001
        return (g.totals.energy_j or 0.0) if has_energy else float(g.totals.flops + g.totals.elementwise_flops)

    ranked = [g for g in sorted(groups, key=weight, reverse=True)[:top] if weight(g) > 0][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(ranked), 1) + 1.2))
    try:
        ax.barh([g.key for g in ranked], [weight(g) for g in ranked], color="#4c78a8")
        ax.set_xlabel("energy (J)" if has_energy else "FLOPs + elementwise FLOPs")
        ax.set_title(f"{result.info.get('model')}: top {len(ranked)} {by}s")
        fig.tight_layout()
        fig.savefig(os.fspath(path), dpi=120)
    except (OSError, ValueError) as e:
        raise UserInputError(f"cannot write plot {os.fspath(path)}: {' '.join(str(e).split())}") from None
    finally:
        plt.close(fig)
