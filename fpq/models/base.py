"""The one feature API every model shares: its conv layers in forward order."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class CifarModel(nn.Module):
    """Base class: subclasses register their convs in the order the forward pass runs them."""

    def conv_layers(self) -> list[nn.Conv2d]:
        # Module registration order equals execution order in every model here
        # (tests/test_models.py checks it with hooks), so no tracing is needed.
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def classifier(self) -> nn.Linear:
        linears = [m for m in self.modules() if isinstance(m, nn.Linear)]
        return linears[-1]


class ConvTaps:
    """Conv outputs (before BN) of a model's forward passes, for CSD on teacher and student.

    The hooks are registered once and stay (cheap when inactive, and a compiled step sees the
    same hooks and the same list object at every step); `collect()` (or start/stop) turns
    recording on for the forward passes inside it.
    """

    def __init__(self, model: CifarModel):
        self.active = False
        self.outputs: list[torch.Tensor] = []
        self.handles = [conv.register_forward_hook(self._hook) for conv in model.conv_layers()]

    def _hook(self, _module, _inputs, output: torch.Tensor) -> None:
        if self.active:
            self.outputs.append(output)

    def start(self) -> list[torch.Tensor]:
        self.outputs.clear()  # in place: torch.compile guards on this list, not on a new one per step
        self.active = True
        return self.outputs

    def stop(self) -> None:
        self.active = False

    @contextmanager
    def collect(self) -> Iterator[list[torch.Tensor]]:
        try:
            yield self.start()
        finally:
            self.stop()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
