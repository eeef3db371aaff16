"""A small CNN whose predicted energy is budgeted in fxenergy.toml beside it."""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 32  # channels of the middle convolution; raise it to see the budget fail


def build() -> tuple[nn.Module, tuple[torch.Tensor]]:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, WIDTH, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, 10),
    )
    return model, (torch.empty(8, 3, 64, 64, device="meta"),)
