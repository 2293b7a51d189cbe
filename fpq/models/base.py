"""The one feature API every model shares: its conv layers in forward order, its stages, and taps
that record either's outputs."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class CifarModel(nn.Module):
    """Base class: subclasses register their convs in the order the forward pass runs them."""

    def conv_layers(self) -> list[nn.Conv2d]:
        # Module registration order equals execution order in every model here
        # (tests/models/test_models.py checks it with hooks), so no tracing is needed.
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def stage_blocks(self) -> list[nn.Module]:
        """The last block of each stage of `self.layers` (a stage: the consecutive blocks of one output
        width), whose outputs are the stage outputs feature distillation usually reads: 3 for
        ResNet-20, 4 for ResNet-18/50, 5 for MobileNetV1, 7 for MobileNetV2."""
        blocks = getattr(self, "layers", None)
        if not isinstance(blocks, nn.Sequential):
            raise ValueError(f"{type(self).__name__} has no `layers` of blocks: it has no stages")
        widths = [[m for m in b.modules() if isinstance(m, nn.Conv2d)][-1].out_channels for b in blocks]
        return [b for i, b in enumerate(blocks) if i + 1 == len(blocks) or widths[i + 1] != widths[i]]

    def tap_modules(self, points: str) -> list[nn.Module]:
        """The modules whose outputs a tap records: "convs" (every conv, before BN) or "stages"."""
        if points == "convs":
            return self.conv_layers()
        if points == "stages":
            return self.stage_blocks()
        raise ValueError(f"tap points {points!r} are not convs or stages")

    def classifier(self) -> nn.Linear:
        linears = [m for m in self.modules() if isinstance(m, nn.Linear)]
        return linears[-1]


class FeatureTaps:
    """Outputs of a model's tap points (every conv before BN, or each stage) during its forward
    passes, for CSD on teacher and student.

    The hooks are registered once and stay (cheap when inactive, and a compiled step sees the
    same hooks and the same list object at every step); `collect()` (or start/stop) turns
    recording on for the forward passes inside it.
    """

    def __init__(self, model: CifarModel, points: str = "convs"):
        self.active, self.points = False, points
        self.outputs: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in model.tap_modules(points)]

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
