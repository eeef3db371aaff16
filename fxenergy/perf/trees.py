"""Gradient-boosted regression trees as plain JSON, evaluated with numpy (no pickle, no sklearn at run time).

Written by ``scripts/fit_gpu_perf.py`` from a fitted ``sklearn.ensemble.HistGradientBoostingRegressor``:
every tree becomes parallel lists (feature, threshold, left, right, leaf value); a sample goes left
when ``x[feature] <= threshold``, as in scikit-learn. All trees are walked at once, level by level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["Forest", "forest_to_json"]


class Forest:
    """A sum of regression trees plus a baseline, over a fixed feature list."""

    def __init__(self, data: Mapping[str, Any]):
        self.features = tuple(data["features"])
        self.baseline = float(data["baseline"])
        trees = data["trees"]
        width = max(len(t["feature"]) for t in trees) if trees else 1
        t_count = len(trees)
        self.feature = np.zeros((t_count, width), dtype=np.int64)
        self.threshold = np.zeros((t_count, width))
        self.left = np.zeros((t_count, width), dtype=np.int64)
        self.right = np.zeros((t_count, width), dtype=np.int64)
        self.value = np.zeros((t_count, width))
        self.leaf = np.ones((t_count, width), dtype=bool)
        self.depth = 1
        for i, t in enumerate(trees):
            n = len(t["feature"])
            self.feature[i, :n] = t["feature"]
            self.threshold[i, :n] = t["threshold"]
            self.left[i, :n] = t["left"]
            self.right[i, :n] = t["right"]
            self.value[i, :n] = t["value"]
            self.leaf[i, :n] = t["leaf"]
            self.depth = max(self.depth, int(t.get("depth", n)))

    def predict(self, X: np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """The forest's sum per row of ``X``. With ``names`` (the columns of ``X``), the forest's own features
        are picked from them by name: a forest may use a subset of the features a family's design computes."""
        X = np.asarray(X, dtype=float)
        if names is not None and tuple(names) != self.features:
            missing = [f for f in self.features if f not in names]
            if missing:
                raise ValueError(f"features {missing} are not among the columns given")
            X = X[:, [list(names).index(f) for f in self.features]]
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features, got shape {X.shape}")
        n = X.shape[0]
        t_count = self.feature.shape[0]
        if n == 0 or t_count == 0:
            return np.full(n, self.baseline)
        rows = np.arange(t_count)[:, None]
        idx = np.zeros((t_count, n), dtype=np.int64)
        samples = np.arange(n)[None, :]
        for _ in range(self.depth + 1):
            leaf = self.leaf[rows, idx]
            if leaf.all():
                break
            go_left = X[samples, self.feature[rows, idx]] <= self.threshold[rows, idx]
            nxt = np.where(go_left, self.left[rows, idx], self.right[rows, idx])
            idx = np.where(leaf, idx, nxt)
        return self.baseline + self.value[rows, idx].sum(axis=0)


def forest_to_json(model: Any, features: tuple[str, ...]) -> dict[str, Any]:
    """Serialise a fitted ``HistGradientBoostingRegressor`` (single output, no categorical features)."""
    trees = []
    for (pred,) in model._predictors:  # noqa: SLF001 - the fitted trees; sklearn has no public accessor
        nodes = pred.nodes
        trees.append({
            "feature": nodes["feature_idx"].astype(int).tolist(),
            "threshold": [float(x) for x in nodes["num_threshold"]],
            "left": nodes["left"].astype(int).tolist(),
            "right": nodes["right"].astype(int).tolist(),
            "value": [round(float(x), 7) for x in nodes["value"]],
            "leaf": nodes["is_leaf"].astype(bool).tolist(),
            "depth": int(nodes["depth"].max()),
        })
    return {"features": list(features), "baseline": float(np.ravel(model._baseline_prediction)[0]), "trees": trees}  # noqa: SLF001
