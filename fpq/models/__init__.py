"""Model registry: CIFAR variants (3x3 stem, no max-pool) looked up by name.

Every model is a `CifarModel`, whose `conv_layers()` lists its convolutions in forward order:
the quantizer, SFP and CSD all work from that one list.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from fpq.models.base import CifarModel, ConvTaps

MODELS: dict[str, Callable[[int], CifarModel]] = {}


def register_model(fn: Callable[[int], CifarModel]) -> Callable[[int], CifarModel]:
    """Register `fn(num_classes) -> model` under its function name."""
    if fn.__name__ in MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    MODELS[fn.__name__] = fn
    return fn


def create_model(name: str, num_classes: int) -> CifarModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name](num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Importing the definitions fills the registry.
from fpq.models import mobilenet, resnet  # noqa: E402,F401

__all__ = ["MODELS", "CifarModel", "ConvTaps", "count_parameters", "create_model", "register_model"]
