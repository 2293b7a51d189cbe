"""Build models from a RunConfig: the float student, the teacher, and saved models of any run."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fpq.config import RunConfig, load_config, to_dict
from fpq.io import CheckpointError, load_torch, save_torch
from fpq.methods import METHODS
from fpq.models import CifarModel, create_model
from fpq.quant import prepare_qat


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device is {name!r} but CUDA is not available here")
    return device


def skeleton(cfg: RunConfig) -> CifarModel:
    """The model of `cfg` before training: float, or float with quantized layers swapped in."""
    model = create_model(cfg.arch, cfg.data.num_classes)
    spec = METHODS[cfg.method]
    if spec.quantizer is not None:
        prepare_qat(model, cfg.quant.w_bits, cfg.quant.a_bits, spec.quantizer, cfg.quant.first_last_bits,
                    fused=cfg.runtime.fused_quant)
    return model


def save_model(path: str | Path, model: nn.Module, cfg: RunConfig) -> Path:
    return save_torch(path, {"config": to_dict(cfg), "state_dict": model.state_dict()})


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[CifarModel, RunConfig]:
    """A saved model.pt of any run, rebuilt from the config stored beside its weights."""
    blob = load_torch(path, "model file")
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise CheckpointError(f"model file {path} is not an fpq model (no config/state_dict)")
    cfg = load_config(blob["config"])
    model = skeleton(cfg)
    model.load_state_dict(blob["state_dict"])
    return model.to(device), cfg


def load_teacher(cfg: RunConfig, device: torch.device) -> CifarModel:
    """The FP teacher of a QAT run; refuses one of another arch, dataset or a non-FP run."""
    teacher, tcfg = load_model(cfg.teacher, device)
    mismatches = [f"{key} {got!r} != {want!r}" for key, got, want in (
        ("arch", tcfg.arch, cfg.arch), ("dataset", tcfg.data.dataset, cfg.data.dataset),
        ("method", tcfg.method, "fp")) if got != want]
    if mismatches:
        raise CheckpointError(f"teacher {cfg.teacher} does not fit this run: {', '.join(mismatches)}")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
