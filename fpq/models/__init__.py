"""Model registry (layer `models`): CIFAR variants (3x3 stem, no max-pool) looked up by name.

Every model is a `CifarModel`, whose `conv_layers()` lists its convolutions in forward order:
the quantizer, SFP and CSD all work from that one list.

A model is one file: a module in this folder whose factory carries `@register_model(label=...,
rank=...)` (`rank`: its row in the paper's tables; models without one come after, by name). The
registry is torch-free: it reads the names, labels and ranks from the modules' source (`ast`,
no import) and imports a module on first use of one of its models, so validating a config
(`fpq budget`, `fpq runs`, `--help`, the Snakefile) never pays for importing torch. Imports
nothing of fpq.
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str  # as the paper prints it (tables, figures)
    rank: int | None = None  # paper order of rows; None: after the paper's models, by name


def _decorator_keywords(node: ast.expr) -> dict | None:
    """The literal keywords of `@register_model(...)` (an empty dict for bare `@register_model`)."""
    if isinstance(node, ast.Name) and node.id == "register_model":
        return {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register_model":
        return {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return None


def discover(folder: Path = HERE, package: str = __name__) -> tuple[dict[str, str], dict[str, ModelInfo]]:
    """name -> module, name -> ModelInfo for every `@register_model` factory in the folder's modules."""
    modules, infos = {}, {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                keywords = _decorator_keywords(deco)
                if keywords is not None:
                    modules[node.name] = f"{package}.{path.stem}"
                    infos[node.name] = ModelInfo(node.name, keywords.get("label", node.name), keywords.get("rank"))
    return modules, infos


# name -> "module that registers it" (a string until first use) or the factory itself.
MODELS: dict[str, Any]
MODEL_INFO: dict[str, ModelInfo]
MODELS, MODEL_INFO = discover()


def register_model(fn: Callable | None = None, *, label: str | None = None, rank: int | None = None):
    """Register `fn(num_classes) -> CifarModel` under its function name; `@register_model` or
    `@register_model(label="ResNet-18", rank=0)`. A plug-in outside this folder registers the same way."""
    def add(f: Callable) -> Callable:
        if callable(MODELS.get(f.__name__)):
            raise ValueError(f"model {f.__name__!r} is already registered")
        MODELS[f.__name__] = f
        known = MODEL_INFO.get(f.__name__)
        MODEL_INFO[f.__name__] = ModelInfo(f.__name__, label or (known.label if known else f.__name__),
                                           rank if rank is not None else (known.rank if known else None))
        return f

    return add(fn) if fn is not None else add


def model_label(name: str) -> str:
    info = MODEL_INFO.get(name)
    return info.label if info else name


def model_rank(name: str) -> tuple:
    """Sort key: the paper's models in its order, then the others by name."""
    info = MODEL_INFO.get(name)
    return (0, info.rank, name) if info and info.rank is not None else (1, 0, name)


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


def __getattr__(name: str):  # CifarModel and FeatureTaps need torch: imported when asked for
    if name in ("CifarModel", "FeatureTaps"):
        from fpq.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'fpq.models' has no attribute {name!r}")


__all__ = ["MODELS", "MODEL_INFO", "CifarModel", "FeatureTaps", "ModelInfo", "count_parameters", "create_model",
           "discover", "model_factory", "model_label", "model_rank", "register_model"]
