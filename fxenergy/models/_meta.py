"""Build modules without allocating or initialising weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["meta_init"]

_META = torch.device("meta")


@contextmanager
def meta_init() -> Iterator[None]:
    """Context manager: every parameter and buffer registered inside is moved to the meta device.

    Works like accelerate's ``init_empty_weights(include_buffers=True)``: ``nn.Module.register_parameter``
    and ``register_buffer`` are patched for the duration, so constructors still run on CPU (plain Python
    arithmetic such as RegNet's ``.tolist()`` keeps working) while weight initialisation lands on meta
    tensors and costs nothing. The originals are restored on exit, also when the body raises.
    """
    orig_param, orig_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def register_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        orig_param(module, name, param)
        if param is not None and param.device != _META:
            p = module._parameters[name]
            assert p is not None  # registered just above
            kwargs = dict(p.__dict__, requires_grad=p.requires_grad)
            module._parameters[name] = type(p)(p.to(_META), **kwargs)

    def register_buffer(module: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        orig_buffer(module, name, tensor, persistent=persistent)
        if tensor is not None:
            buf = module._buffers[name]
            assert buf is not None  # registered just above
            module._buffers[name] = buf.to(_META)

    nn.Module.register_parameter = register_parameter  # type: ignore[method-assign,assignment]
    nn.Module.register_buffer = register_buffer  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = orig_param  # type: ignore[method-assign]
        nn.Module.register_buffer = orig_buffer  # type: ignore[method-assign]
