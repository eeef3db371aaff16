"""The op registry, one question per ATen op: its cost formula, its byte rule, its duration family and
its layer type, answered in one place by :func:`op_info`.

The facts live where their code lives and are all keyed by the same ATen op: cost formulas and byte
rules in :mod:`fxenergy.passes.costs` (keyed by overload or packet, falling back to the schema name),
duration families (HEF curves) in :mod:`fxenergy.passes.families` (keyed by op name), and the layer
types of seed 000's layer-wise regression here (:data:`LAYER_TYPES`, keyed by op name; it was a private
table of :mod:`fxenergy.predictors.layerwise`).

MAC convention of the seed-000 ReLU rule, reconciled against Table 3 of Getzner et al.: VGG11 at 224²
has 7,434,240 ReLU output elements (64·224² + 128·112² + 2·256·56² + 2·512·28² + 2·512·14² + 2·4096)
and Table 3 lists 3,717,120 ReLU MACs, i.e. ``numel / 2``: the rule of :mod:`fxenergy.passes.costs`
(``--convention seed000``). :func:`fxenergy.predictors.layerwise.seed000_macs` counts one per element
for ReLU: that is a regression *feature* fitted on Getzner's data, where a constant factor is absorbed
by the fitted coefficient, not a MAC count to compare with Table 3.

>>> import torch
>>> info = op_info(torch.ops.aten.addmm.default)
>>> info.family, info.basis, info.layer_type, info.modeled
('matmul', 'flops', 'Linear', True)
>>> op_info(torch.ops.aten.relu.default).layer_type
'ReLU'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from fxenergy.passes.costs import _BYTES, lookup
from fxenergy.passes.families import FAMILIES, family_of

__all__ = ["OpInfo", "op_info", "LAYER_TYPES", "layer_type_of"]

LAYER_TYPES: Mapping[str, str] = MappingProxyType({
    "convolution": "Conv2d", "max_pool2d_with_indices": "MaxPool2d", "max_pool2d": "MaxPool2d",
    "avg_pool2d": "AvgPool2d", "addmm": "Linear", "mm": "Linear", "linear": "Linear", "relu": "ReLU",
    "relu_": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "_softmax": "Softmax", "softmax": "Softmax",
    "_native_batch_norm_legit_no_training": "BatchNorm2d", "native_batch_norm": "BatchNorm2d",
    "_native_batch_norm_legit": "BatchNorm2d", "cudnn_batch_norm": "BatchNorm2d",
    "_adaptive_avg_pool2d": "AdaptiveAvgPool2d", "adaptive_avg_pool2d": "AdaptiveAvgPool2d",
})
"""ATen op name -> seed 000 layer type (the regressors of the layer-wise backend)."""


def layer_type_of(op_name: str) -> str | None:
    return LAYER_TYPES.get(op_name)


@dataclass(frozen=True)
class OpInfo:
    """What fxenergy knows about one ATen op.

    ``modeled``: True with a cost formula, None when deliberately free (views), False when unmodeled
    (its FLOPs unknown, never zero). ``cost``/``bytes_rule`` are the functions the cost pass calls
    (``bytes_rule`` None means the default: read every input, write every output).
    """

    name: str
    modeled: bool | None
    cost: Callable[..., Any] | None
    bytes_rule: Callable[..., Any] | None
    family: str
    basis: str
    layer_type: str | None


def op_info(op: torch._ops.OpOverload) -> OpInfo:
    name = op._schema.name.split("::", 1)[-1]
    known, fn = lookup(op)
    rule = next((_BYTES[k] for k in (op, getattr(op, "overloadpacket", None)) if k in _BYTES), None)
    fam = family_of(name)
    return OpInfo(name=name, modeled=(None if known and fn is None else known), cost=fn, bytes_rule=rule,
                  family=fam, basis=FAMILIES[fam].basis, layer_type=LAYER_TYPES.get(name))
