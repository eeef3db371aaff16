"""``annotate``: the one call that runs capture → passes → (predictor) and returns a Result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fxenergy import __version__
from fxenergy.capture import capture
from fxenergy.errors import UserInputError
from fxenergy.passes.costs import CostPass, get_convention
from fxenergy.passes.working_sets import WorkingSetPass, model_working_sets
from fxenergy.result import Result, rows_from_graph

__all__ = ["annotate", "PREDICTORS"]

# Energy predictors available by name. "none" reports costs only; energy backends register here.
PREDICTORS = ("none",)


def annotate(
    model: torch.nn.Module,
    example_input: Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    mode: str = "inference",
    convention: str = "default",
    hardware: Any = None,
    predictor: str | None = None,
    optimizer: str = "adamw",
    method: str = "auto",
    dataset_samples: int | None = None,
    name: str | None = None,
) -> Result:
    """Capture ``model(*example_input, **example_kwargs)`` and annotate every node with its costs.

    No weights are copied and nothing is computed: the model runs on meta tensors. ``mode`` is
    ``"inference"`` (forward only) or ``"training"`` (forward + backward + ``optimizer`` update, as
    one graph). ``convention`` is the MAC convention (``"default"`` = torch.utils.flop_counter,
    ``"seed000"`` = Getzner et al.). ``hardware`` is a profile name, file path or profile object.

    >>> import torch, fxenergy
    >>> r = fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4))
    >>> r.totals.macs  # 2 * 4 * 3 = 24, no bias under the default convention
    24
    """
    conv = get_convention(convention)
    profile = _resolve_hardware(hardware)
    predictor_name = _resolve_predictor(predictor)
    if dataset_samples is not None and dataset_samples <= 0:
        raise UserInputError(f"dataset_samples must be a positive integer, got {dataset_samples}")

    cap = capture(model, example_input, example_kwargs, mode=mode, method=method, optimizer=optimizer)
    gm = cap.graph_module
    for pass_ in (CostPass(conv), WorkingSetPass()):
        pass_(gm)

    trainable = sum(p.nbytes for p in model.parameters() if p.requires_grad)
    input_bytes = sum(s.nbytes for s in cap.input_specs)
    batch = cap.input_specs[0].shape[0] if cap.input_specs and cap.input_specs[0].shape else None
    ws = model_working_sets(
        gm,
        param_bytes=cap.param_bytes,
        trainable_param_bytes=trainable,
        buffer_bytes=cap.buffer_bytes,
        input_bytes=input_bytes,
        output_bytes=sum(s.nbytes for s in cap.output_specs) if mode == "inference" else 0,
        batch_size=batch,
        dataset_samples=dataset_samples,
    )
    info = {
        "model": name or type(model).__name__,
        "fxenergy_version": __version__,
        "mode": mode,
        "optimizer": cap.optimizer,
        "capture_method": cap.method,
        "capture_attempts": list(cap.attempts),
        "convention": conv.name,
        "inputs": [{"shape": list(s.shape), "dtype": str(s.dtype).removeprefix("torch.")} for s in cap.input_specs],
        "param_count": cap.param_count,
        "param_bytes": cap.param_bytes,
        "buffer_bytes": cap.buffer_bytes,
        "hardware": getattr(profile, "name", None),
        "predictor": predictor_name,
    }
    return Result(gm, rows_from_graph(gm), ws, info)


def _resolve_hardware(hardware: Any) -> Any:
    if hardware is None:
        return None
    try:
        from fxenergy.hardware import HardwareProfile, load_profile
    except ImportError:  # pragma: no cover - the hardware package ships with fxenergy
        raise UserInputError("hardware profiles are not available in this installation") from None
    if isinstance(hardware, HardwareProfile):
        return hardware
    if not isinstance(hardware, str):
        raise UserInputError(f"hardware must be a profile name, a JSON file path or a HardwareProfile, got {type(hardware).__name__}")
    return load_profile(hardware)


def _resolve_predictor(predictor: str | None) -> str:
    name = "none" if predictor is None else predictor
    if name not in PREDICTORS:
        raise UserInputError(f"unknown predictor {name!r}; available: {', '.join(PREDICTORS)}")
    return name
