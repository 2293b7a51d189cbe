"""What every bench path builds, through fpq's own training path: the cell's RunConfig, the
student, teacher, loss and training step, and the random batches they step on.

Imported by bench_path.py (every timed path) and agreement.py (the agreement rows); it imports
neither, so the bench scripts import one way only: bench_path -> agreement -> build.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def parse_runtime(text: str | None) -> dict:
    """'compile=false,teacher_cuda_graph=true' -> {'compile': False, 'teacher_cuda_graph': True}."""
    out = {}
    for part in filter(None, (text or "").split(",")):
        k, sep, v = part.partition("=")
        if not sep:
            raise SystemExit(f"--runtime expects KEY=VAL[,KEY=VAL], got {text!r}")
        out[k.strip()] = {"true": True, "false": False}.get(v.strip().lower(), v.strip())
    return out


def cell_config(workflow: str, arch: str, method: str, batch: int, runtime: dict, device: str):
    """The RunConfig `fpq qat` would run for this cell (W2A4) under the workflow config, with the
    runtime keys given laid over it (on top of its CUDA overrides: a key given here wins on CUDA too)."""
    from fpq.config import load_config, to_dict
    from fpq.method.registry import METHODS
    from fpq.plan.grid import load_workflow_config, run_config
    from fpq.run.cell import Cell

    spec = METHODS[method]
    bits = (2, 4) if spec.quantizer else (32, 32)
    try:
        config = load_workflow_config(REPO / workflow)
    except ImportError:  # a GPU machine without jsonschema: the same merge, unvalidated (see _unvalidated)
        data = _unvalidated(REPO / workflow, arch, method, bits)
    else:
        cell = Cell("cifar10", arch, method, *bits, p=float(config["quant"][spec.cell_key]) if spec.cell_key else None)
        data = to_dict(run_config(config, cell, None if spec.quantizer is None else "bench"))
    data.setdefault("optim", {})["batch_size"] = batch
    data["runtime"].setdefault("cuda", {})
    data["runtime"].update(device=device, progress=False, **runtime)
    data["runtime"]["cuda"] = {k: v for k, v in data["runtime"]["cuda"].items() if k not in runtime}
    data["teacher"] = "bench" if spec.quantizer else ""
    return load_config(data)


def _unvalidated(path: Path, arch: str, method: str, bits: tuple[int, int]) -> dict:
    """What fpq.plan.grid.run_config takes from a workflow config for a cell's run (runtime merged
    with arch_runtime, the quant keys, the stage's optim) when its schema validator is missing."""
    import yaml

    from fpq.plan.grid import merged  # the module imports without jsonschema (it validates on first use)

    config = yaml.safe_load(path.read_text())
    runtime = merged(config.get("runtime", {}), config.get("arch_runtime", {}).get(arch, {}))
    data = {"arch": arch, "method": method, "data": {"dataset": "cifar10"}, "runtime": runtime}
    if bits[0] < 32:
        data["quant"] = {**config.get("quant", {}), "w_bits": bits[0], "a_bits": bits[1]}
    return data


def build_step(cfg, device, x_u8, y_u8, teacher=None):
    """What train.run builds for this config: loader, student, teacher, objective, optimizer and
    its training step (eager, or replayed from a CUDA graph with runtime.cuda_graph); the step
    function runs one step on the loader's next batch. Returns (step, objective, batches, train_step)."""

    from fpq.method.registry import METHODS
    from fpq.models import create_model
    from fpq.run.data import DeviceLoader
    from fpq.run.train import build_student, make_objective, make_optimizer, make_step, uses_cuda_graph

    spec = METHODS[cfg.method]
    loader = DeviceLoader(x_u8, y_u8, cfg.data.dataset, cfg.optim.batch_size, device, train=True, seed=cfg.seed,
                          channels_last=cfg.runtime.channels_last, drop_last=True)
    if spec.quantizer and teacher is None:
        teacher = create_model(cfg.arch, cfg.data.num_classes)  # random weights: speed only
    student, teacher = build_student(cfg, loader, device, teacher if spec.quantizer else None)
    kernels = run_kernels(cfg, student, device)
    objective = make_objective(cfg, student, teacher, uses_cuda_graph(cfg, device), kernels)
    optimizer, _ = make_optimizer(cfg, student)
    train_step = make_step(cfg, student, objective, optimizer, device, log=lambda line: print("  " + line))
    student.train()
    batches = _cycle(loader)

    def step():
        x, y = next(batches)
        return train_step(x, y)

    return step, objective, batches, train_step


def run_kernels(cfg, student, device) -> str:
    """`runtime.kernels` as a run on this device gets it (fpq.run.train.choose_run_kernels); under
    TRITON_INTERPRET=1 (the CPU smoke run) the Triton kernels run on the CPU too, in the interpreter."""
    from fpq import kernels
    from fpq.quant import set_kernels
    from fpq.run.train import choose_run_kernels

    if not (kernels.interpreting() and cfg.runtime.kernels == "triton" and cfg.is_qat):
        return choose_run_kernels(cfg, student, device, log=lambda line: print("  " + line))
    set_kernels(student, "triton")
    return "triton"


def _cycle(loader):
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1




def setup(args, default_method: str):
    """What every path (and each shared job) starts from: the device, the cell's RunConfig with the
    keys in force there (as train.run), its method, and 4 batches of random uint8 images."""
    import numpy as np
    import torch

    from fpq.run.build import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as a training run on CUDA has it (fpq.run.train)
        torch.cuda.reset_peak_memory_stats(device)
    method = args.method or default_method
    cfg = cell_config(args.workflow, args.arch, method, args.batch, parse_runtime(args.runtime), args.device)
    cfg = dataclasses.replace(cfg, runtime=cfg.runtime.on(device.type))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = args.batch * 4
    x_u8 = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y_u8 = rng.integers(0, cfg.data.num_classes, n).astype(np.int64)
    return cfg, device, method, x_u8, y_u8
