"""Model registry: CIFAR variants (3x3 stem, no max-pool) looked up by name.

Every model is a `CifarModel`, whose `conv_layers()` lists its convolutions in forward order:
the quantizer, SFP and CSD all work from that one list.

The registry itself is torch-free: the built-in models are listed by the module that defines
them and imported on first use, so validating a config (`fpq budget`, `fpq runs`, `--help`)
never pays for importing torch. `register_model` adds a model (and replaces a lazy entry when
its module is imported).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

# name -> "module that registers it" (a string until first use) or the factory itself.
MODELS: dict[str, Any] = {
    "resnet20": "fpq.models.resnet",
    "resnet18": "fpq.models.resnet",
    "resnet50": "fpq.models.resnet",
    "mobilenetv1": "fpq.models.mobilenet",
    "mobilenetv2": "fpq.models.mobilenet",
}


def register_model(fn: Callable):
    """Register `fn(num_classes) -> CifarModel` under its function name."""
    if callable(MODELS.get(fn.__name__)):
        raise ValueError(f"model {fn.__name__!r} is already registered")
    MODELS[fn.__name__] = fn
    return fn


def model_factory(name: str) -> Callable:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    if isinstance(MODELS[name], str):
        importlib.import_module(MODELS[name])  # its @register_model replaces the string
        if isinstance(MODELS[name], str):
            raise KeyError(f"module {MODELS[name]} does not register model {name!r}")
    return MODELS[name]


def create_model(name: str, num_classes: int):
    return model_factory(name)(num_classes)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def __getattr__(name: str):  # CifarModel and ConvTaps need torch: imported when asked for
    if name in ("CifarModel", "ConvTaps"):
        from fpq.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'fpq.models' has no attribute {name!r}")


__all__ = ["MODELS", "CifarModel", "ConvTaps", "count_parameters", "create_model", "model_factory",
           "register_model"]
