"""Build models from a RunConfig: the float student, the teacher, and saved models of any run."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fpq.config import ConfigError, RunConfig, load_config, to_dict
from fpq.io import CheckpointError, load_torch, save_torch
from fpq.method.registry import METHODS
from fpq.models import CifarModel, create_model
from fpq.quant import prepare_qat


def resolve_device(name: str, key: str = "runtime.device") -> torch.device:
    """The device `name` stands for; `key` is where the user set it (a config key or a flag)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:  # a run config checks the spelling itself; a command-line flag arrives here
        raise ConfigError(f"{key} is {name!r}, not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is {name!r} but CUDA is not available here (use auto or cpu)")
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


def read_model_file(path: str | Path, what: str = "model file") -> tuple[dict, RunConfig]:
    """The saved blob and its config; errors say what the file is for (`what`) and where fpq looked."""
    if not Path(path).is_file():  # a relative path alone does not say where it was looked for
        hint = "; train it first (fpq pretrain) or point teacher: at its model.pt" if what == "teacher" else ""
        raise CheckpointError(f"{what} {path} does not exist (looked for {Path(path).resolve()}){hint}")
    blob = load_torch(path, what)
    if isinstance(blob, dict) and {"identity", "model", "optimizer"} <= set(blob):  # fpq.run.train's checkpoint
        raise CheckpointError(f"{what} {path} is a training checkpoint (for resuming a run), not a model: use the "
                              f"model.pt a finished run writes beside it ({Path(path).with_name('model.pt')})")
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise CheckpointError(f"{what} {path} is not an fpq model (no config/state_dict)")
    return blob, load_config(blob["config"])


def load_model(path: str | Path, device: torch.device | str = "cpu",
               expect: RunConfig | None = None) -> tuple[CifarModel, RunConfig]:
    """A saved model.pt of any run, rebuilt from the config stored beside its weights; with
    `expect`, the teacher of that run (refused unless it fits)."""
    what = "model file" if expect is None else "teacher"
    blob, cfg = read_model_file(path, what)
    if expect is not None:
        _check_teacher_fits(path, cfg, expect)
    model = skeleton(cfg)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{what} {path} does not match its own config: {str(err)[:300]}") from None
    return model.to(device), cfg


def _check_teacher_fits(path, tcfg: RunConfig, cfg: RunConfig) -> None:
    mismatches = [f"the teacher's {key} is {got!r}, this run's {want!r}" for key, got, want in (
        ("arch", tcfg.arch, cfg.arch), ("dataset", tcfg.data.dataset, cfg.data.dataset)) if got != want]
    if tcfg.is_qat:
        mismatches.append(f"the teacher's method is {tcfg.method!r}, a teacher must be an 'fp' run")
    if mismatches:
        raise CheckpointError(f"teacher {path} does not fit this run: {'; '.join(mismatches)}")
