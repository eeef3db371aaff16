"""Working-set pass (seed 003, Tripp et al. 2024, §6): the data each part of a run keeps touching.

Per node it records the **inter-layer working set** ``t_l``: the activations the node reads (outputs
of the nodes feeding it, parameters excluded) plus the activations it writes. For the whole model,
:func:`model_working_sets` gives

* ``forward_bytes`` (f): the parameters and buffers Θ;
* ``backward_bytes`` (b): Θ, their gradients ∂L/∂Θ (trainable parameters only), and one value per
  unit per datum (the seed keeps either a pre-activation or its gradient, never both): the sum of the
  activations written by forward nodes;
* ``inter_layer_max_bytes``: max over nodes of ``t_l``;
* ``batch_bytes`` (d): one batch of inputs plus outputs. NB: seed 003's d is the whole dataset; pass
  ``dataset_samples`` to scale the per-sample share of the inputs to a dataset.

NB: in-place ops (``relu_``) count their output as a new activation, as an unfused run would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fxenergy.capture import PARAMETER
from fxenergy.records import COST, TRACE, WORKING_SET, NodeWorkingSet, get_record, put_record

__all__ = ["WorkingSetPass", "ModelWorkingSets", "model_working_sets"]


@dataclass(frozen=True, slots=True)
class ModelWorkingSets:
    """Seed 003 §6 working sets of a whole model, in bytes."""

    forward_bytes: int
    backward_bytes: int
    inter_layer_max_bytes: int
    inter_layer_max_node: str
    batch_bytes: int
    dataset_bytes: int | None = None


class WorkingSetPass:
    """Adds a :class:`~fxenergy.records.NodeWorkingSet` to every compute node. Requires: trace, cost."""

    requires = (TRACE, COST)
    provides = WORKING_SET

    def __call__(self, gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "get_attr", "output"):
                continue
            cost = get_record(node, COST, required_by=type(self).__name__)
            trace = get_record(node, TRACE, required_by=type(self).__name__)
            if cost.free or trace.phase == "optimizer":  # t_l is about layers, not the update
                continue
            act_in = sum(_activation_bytes(m) for m in node.all_input_nodes)
            out = sum(t.nbytes for t in trace.outputs)
            put_record(node, WORKING_SET, NodeWorkingSet(act_in, out))
        return gm


def _activation_bytes(node: torch.fx.Node) -> int:
    trace = get_record(node, TRACE)
    if trace is None or trace.module_type == PARAMETER:
        return 0
    return sum(t.nbytes for t in trace.outputs)


def model_working_sets(
    gm: torch.fx.GraphModule,
    *,
    param_bytes: int,
    trainable_param_bytes: int,
    buffer_bytes: int,
    input_bytes: int,
    output_bytes: int,
    batch_size: int | None = None,
    dataset_samples: int | None = None,
) -> ModelWorkingSets:
    """Whole-model working sets from the node records (see the module docstring for definitions)."""
    units = 0
    t_max, t_node = 0, ""
    for node in gm.graph.nodes:
        ws = get_record(node, WORKING_SET)
        if ws is None:
            continue
        if get_record(node, TRACE).phase == "forward":
            units += ws.activation_out_bytes
        if ws.inter_layer_bytes > t_max:
            t_max, t_node = ws.inter_layer_bytes, node.name
    dataset = None
    if dataset_samples is not None and batch_size:
        dataset = input_bytes // batch_size * dataset_samples
    return ModelWorkingSets(
        forward_bytes=param_bytes + buffer_bytes,
        backward_bytes=param_bytes + buffer_bytes + trainable_param_bytes + units,
        inter_layer_max_bytes=t_max,
        inter_layer_max_node=t_node,
        batch_bytes=input_bytes + output_bytes,
        dataset_bytes=dataset,
    )
