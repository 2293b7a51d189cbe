"""One training run, top to bottom: FP teacher or QAT of any registered method.

Per epoch: train, record what the loss was made of (`fpq.run.composition`), evaluate on the test
set, (optionally) measure the Hessian trace, checkpoint atomically. A rerun in the same folder resumes from the last checkpoint of the same run
identity (`config.resume_identity`: thread count and device spelling do not count); on CPU the
resumed run ends bitwise equal to an uninterrupted one. `metrics.json` is written last: its
presence means the run finished, with status "ok" (or "failed" when a run that diverged, or
whose teacher failed, is recorded as a result). Every attempt appends to `train.log`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from fpq.config import RunConfig, dict_differences, dump_config, resume_identity, to_dict
from fpq.io import ensure_writable, failed_run, load_torch, save_torch, write_json, write_text
from fpq.measure.hessian import hutchinson_trace
from fpq.method.objective import Objective, compiled
from fpq.method.registry import METHODS
from fpq.method.teacher import prepare_teacher
from fpq.quant import calibrate, kernel_path, quantizer_parameters, set_kernels
from fpq.run.build import load_model, resolve_device, save_model, skeleton
from fpq.run.cell import Cell
from fpq.run.composition import PROBE_IMAGES, composition_text, epoch_composition
from fpq.run.data import DeviceLoader, load_arrays
from fpq.run.kernel_check import choose_kernels
from fpq.run.provenance import provenance
from fpq.run.seed import rng_state, seed_everything, set_rng_state
from fpq.run.step import EvalForward, TrainStep, graph_line, graph_report

CHECKPOINT, MODEL, METRICS, FAILED, LOG = "checkpoint.pt", "model.pt", "metrics.json", "failed.json", "train.log"


class RunFailure(RuntimeError):
    """The run cannot give a result: it diverged, or its teacher failed. A result of the method
    (the paper's own PACT W2A2 MobileNet cells collapse), not a bug: the workflow records it."""


class DivergenceError(RunFailure):
    """The loss or accuracy became NaN or infinite."""


class TeacherFailed(RunFailure):
    """The FP teacher run this QAT run starts from ended as failed."""


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    history: list = field(default_factory=list)
    hessian: list = field(default_factory=list)
    elapsed: float = 0.0  # training seconds before this process


def check_teacher(cfg: RunConfig) -> None:
    """A QAT run whose teacher's run ended as failed fails too, naming the teacher."""
    status = failed_run(cfg.teacher)
    if status is not None:
        raise TeacherFailed(f"teacher {status.get('run_id') or cfg.teacher} failed: {status.get('error')}")


def build_student(cfg: RunConfig, loader: DeviceLoader, device: torch.device, teacher: nn.Module | None = None):
    """Float model (teacher stage), or the teacher's copy made quantized and calibrated; `teacher`
    is the FP teacher `preflight` loaded and checked, moved to the device here."""
    if not cfg.is_qat:
        return prepare_student(cfg, None, None, device), None
    images, _ = loader.sample(cfg.quant.calib_images, seed=cfg.seed)
    return prepare_models(cfg, teacher.to(device), images, device)


def prepare_models(cfg: RunConfig, teacher: nn.Module, calib_images, device: torch.device):
    """(student, teacher) of a QAT run from its FP teacher: the student first (it copies the fp32
    weights), then the teacher frozen for inference speed (bench/ builds its models through here)."""
    student = prepare_student(cfg, teacher, calib_images, device)
    return student, prepare_teacher(teacher, cfg.runtime.channels_last, cfg.runtime.teacher_bf16)


def prepare_student(cfg: RunConfig, teacher: nn.Module | None, calib_images, device: torch.device):
    """The student of `cfg`: for QAT, the teacher's weights, calibrated on `calib_images`, then each
    of the method's pieces attached (SFP's gates, a plug-in's weight-side hook)."""
    student = skeleton(cfg).to(device)
    if teacher is not None:
        missing, _ = student.load_state_dict(teacher.state_dict(), strict=False)
        if any(not _is_quantizer_key(k) for k in missing):
            raise RuntimeError(f"teacher weights do not cover the student: {missing[:5]}")
        calibrate(student, calib_images)
        for piece in METHODS[cfg.method].parts:
            piece.attach(student, cfg.quant)
    return _memory_format(cfg, student)


def _memory_format(cfg: RunConfig, model: nn.Module) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if cfg.runtime.channels_last else model


def _is_quantizer_key(key: str) -> bool:
    return any(part in key for part in ("w_quant.", "a_quant."))


def uses_cuda_graph(cfg: RunConfig, device: torch.device) -> bool:
    """`runtime.cuda_graph` is a CUDA path: elsewhere the same run is eager."""
    return cfg.runtime.cuda_graph and device.type == "cuda"


def make_objective(cfg: RunConfig, model: nn.Module, teacher: nn.Module | None, step_graph: bool = False,
                   kernels: str = "torch") -> Objective:
    """The method's loss; with `runtime.compile`, one compiled graph for the whole loss; `kernels`
    is the path `choose_run_kernels` chose (the student's quantizers are set to it there)."""
    rt = cfg.runtime
    return Objective(METHODS[cfg.method], cfg.quant, model, teacher, student_bf16=rt.bf16,
                     teacher_bf16=rt.teacher_bf16, compile_mode=rt.compile_mode if rt.compile else None,
                     csd_compile=rt.csd_compile, teacher_cuda_graph=rt.teacher_cuda_graph, step_graph=step_graph,
                     kernels=kernels)


def choose_run_kernels(cfg: RunConfig, model: nn.Module, device: torch.device, log=None) -> str:
    """`runtime.kernels` on this device (fpq.run.kernel_check), set on the student's quantizers;
    the choice, when it was a question, gets one train.log line."""
    if not cfg.is_qat:
        return "torch"
    dtypes = (torch.float32, torch.bfloat16) if cfg.runtime.bf16 or cfg.runtime.teacher_bf16 else (torch.float32,)
    kernels, line = choose_kernels(cfg.runtime.kernels, device, dtypes)
    if line and log is not None:
        log(line)
    set_kernels(model, kernels)
    return kernels


def make_step(cfg: RunConfig, model: nn.Module, objective: Objective, optimizer, device: torch.device,
              log=None) -> TrainStep:
    """The training step of `cfg`: eager, or (runtime.cuda_graph on CUDA) replayed from a CUDA graph."""
    options = {k: v for piece in METHODS[cfg.method].parts for k, v in piece.step_options(cfg.quant).items()}
    return TrainStep(objective, optimizer, model, options.get("sam_rho"), uses_cuda_graph(cfg, device), log)


def eval_forward(cfg: RunConfig, model: nn.Module, device: torch.device, log=None) -> EvalForward:
    """The test forward: the module, its compiled wrapper (runtime.compile: compiled once, reused
    every epoch) or a CUDA graph of it (runtime.cuda_graph)."""
    forward = compiled(model, cfg.runtime.compile_mode) if cfg.runtime.compile else model
    return EvalForward(forward, cfg.runtime.bf16, uses_cuda_graph(cfg, device), log)


def make_optimizer(cfg: RunConfig, model: nn.Module):
    """SGD + per-epoch cosine; quantizer parameters get weight decay only if asked."""
    quant = {id(p) for p in quantizer_parameters(model)}
    groups = [{"params": [p for p in model.parameters() if id(p) not in quant]}]
    if quant:
        wd = cfg.optim.weight_decay if cfg.optim.quant_weight_decay else 0.0
        groups.append({"params": [p for p in model.parameters() if id(p) in quant], "weight_decay": wd})
    opt = torch.optim.SGD(groups, lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay,
                          **({"fused": True} if cfg.runtime.fused_optimizer else {}))
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.optim.epochs)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model, step: TrainStep, loader: DeviceLoader, epoch: int) -> dict:
    """One epoch; also the wall time of its first step (which pays any compile: `first_step_time`)."""
    model.train()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    seen, first_step_time, t0 = 0, 0.0, time.time()
    for i, (x, y) in enumerate(loader.epoch(epoch)):
        loss, logits = step(x, y)
        loss_sum += loss.detach() * y.shape[0]  # no .item() per batch: no host sync in the step
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        if i == 0:  # one sync per epoch, to time the first step
            _sync(loader.device)
            first_step_time = time.time() - t0
    return {"train_loss": loss_sum.item() / seen, "train_acc": 100.0 * correct.item() / seen,
            "train_images": seen, "first_step_time": first_step_time}


@torch.no_grad()
def evaluate(model, loader: DeviceLoader, forward: EvalForward) -> dict:
    """Test loss and accuracy in eval mode (the caller's mode restored); `forward` is the model's
    test forward (eager, compiled or a graph replay; fp32 logits)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    for x, y in loader.epoch():
        logits = forward(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = loader.num_images
    return {"test_loss": loss_sum.item() / n, "test_acc": 100.0 * correct.item() / n}


def hessian_batches(cfg: RunConfig, loader: DeviceLoader):
    h = cfg.hessian
    x, y = loader.sample(h.batches * h.batch_size, seed=h.seed)
    return [(x[i:i + h.batch_size], y[i:i + h.batch_size]) for i in range(0, x.shape[0], h.batch_size)]


def measure_trace(cfg: RunConfig, model, batches, epoch: int) -> dict:
    with kernel_path(model, "torch"):  # Hessian-vector products need the torch path's double backward
        est = hutchinson_trace(model, batches, probes=cfg.hessian.probes, seed=cfg.hessian.seed)
    return {"epoch": epoch, **est.as_dict()}


class RunLog:
    """Progress lines to stderr (when `runtime.progress`) and, always, appended to <out>/train.log.

    Snakemake empties a job's own log before every attempt; train.log keeps every attempt, each
    opened by a header line, so an interrupted attempt's lines survive its rerun.
    """

    def __init__(self, cfg: RunConfig, out: Path):
        self.cfg, self.path = cfg, out / LOG
        attempt = 1
        if self.path.exists():
            attempt += sum(line.startswith("== attempt ") for line in self.path.read_text(errors="replace").splitlines())
        self._append(f"== attempt {attempt}: {time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()}, "
                     f"pid {os.getpid()}")

    def _append(self, line: str) -> None:
        with open(self.path, "a") as handle:
            handle.write(line + "\n")

    def write(self, message: str) -> None:
        line = f"[{self.cfg.run_id or self.cfg.method}] {message}"
        self._append(line)
        if self.cfg.runtime.progress:
            print(line, file=sys.stderr, flush=True)


def resume(ckpt: dict | None, out: Path, cfg: RunConfig, device: torch.device, model, optimizer, scheduler,
           log: RunLog) -> RunState:
    """The state after the last completed epoch of `ckpt` (out's checkpoint, read by preflight), if
    it is this run's; a fresh state otherwise."""
    path = out / CHECKPOINT
    if ckpt is None:
        return RunState()
    identity = resume_identity(cfg, device.type)
    if ckpt.get("identity") != identity:
        changed = dict_differences(ckpt["identity"], identity) if "identity" in ckpt else ["written by an older fpq"]
        log.write(f"checkpoint {path} belongs to another run ({'; '.join(changed)}); starting over")
        return RunState()
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    log.write(f"resuming after epoch {ckpt['epoch']}")
    return RunState(ckpt["epoch"], ckpt["history"], ckpt["hessian"], ckpt["elapsed"])


def save_checkpoint(out: Path, cfg: RunConfig, device: torch.device, state: RunState, model, optimizer,
                    scheduler) -> None:
    save_torch(out / CHECKPOINT, {
        "identity": resume_identity(cfg, device.type), "epoch": state.epoch, "history": state.history,
        "hessian": state.hessian, "elapsed": state.elapsed, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()})


def check_finite(cfg: RunConfig, row: dict) -> None:
    bad = {k: v for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        raise DivergenceError(f"run {cfg.run_id or cfg.method} diverged at epoch {row['epoch']}: {bad}")


def progress_line(cfg: RunConfig, row: dict, images: int, remaining: int) -> str:
    rate = images / row["epoch_time"]
    eta = remaining * row["epoch_time"]
    return (f"epoch {row['epoch']}/{cfg.optim.epochs} loss {row['train_loss']:.4f} "
            f"train {row['train_acc']:.2f}% test {row['test_acc']:.2f}% | {rate:,.0f} img/s | "
            f"{row['epoch_time']:.1f}s/epoch | ETA {eta / 60:.1f} min{composition_text(row)}")


def compile_seconds(history: list[dict]) -> float | None:
    """Seconds the first compiled step and evaluation took beyond a steady one (this process)."""
    first = history[0]
    if len(history) < 2 or "first_step_time" not in first:
        return None
    steady_step = (first["epoch_time"] - first["first_step_time"]) / max(1, first.get("steps", 2) - 1)
    return max(0.0, first["first_step_time"] - steady_step) + max(0.0, first["eval_time"] - history[1]["eval_time"])


def preflight(cfg: RunConfig, out: Path):
    """Every check that can refuse the run, before its folder gets a file: the device, the data
    (file, keys, subsets), the teacher (a failed one, a missing, damaged or unfitting file), a
    checkpoint to resume, then the folder's writability. So bad input leaves no half-made run
    folder (no config.json, no `== attempt` line), and a read-only or full folder fails now, not
    after training. Returns the config with the speed keys in force on this device, the device,
    the data, the checkpoint and the teacher (on the CPU; None where there is none)."""
    device = resolve_device(cfg.runtime.device)
    cfg = dataclasses.replace(cfg, runtime=cfg.runtime.on(device.type))
    data = load_arrays(cfg.data)
    teacher = None
    if cfg.is_qat:
        check_teacher(cfg)
        teacher, _ = load_model(cfg.teacher, "cpu", expect=cfg)  # read once: build_student moves it over
    ckpt = load_torch(out / CHECKPOINT) if (out / CHECKPOINT).exists() else None
    ensure_writable(out)
    return cfg, device, data, ckpt, teacher


def run(cfg: RunConfig, out: str | Path) -> dict:
    """Train `cfg` in folder `out` (resuming if a checkpoint is there); returns the metrics."""
    out = Path(out)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    cfg, device, data, ckpt, teacher = preflight(cfg, out)
    write_text(out / "config.json", dump_config(cfg))  # the resolved config, there from the start
    log = RunLog(cfg, out)
    seed_everything(cfg.seed)
    cl, rt = cfg.runtime.channels_last, cfg.runtime
    train_loader = DeviceLoader(data.x_train, data.y_train, cfg.data.dataset, cfg.optim.batch_size, device,
                                train=True, seed=cfg.seed, channels_last=cl,
                                drop_last=rt.compile or rt.csd_compile or rt.cuda_graph)  # one shape per compile/graph
    test_loader = DeviceLoader(data.x_test, data.y_test, cfg.data.dataset, 1000, device, train=False,
                               channels_last=cl)
    model, teacher = build_student(cfg, train_loader, device, teacher)
    kernels = choose_run_kernels(cfg, model, device, log.write)
    objective = make_objective(cfg, model, teacher, uses_cuda_graph(cfg, device), kernels)
    optimizer, scheduler = make_optimizer(cfg, model)
    step = make_step(cfg, model, objective, optimizer, device, log.write)
    objective.record = step.graph is None and not cfg.runtime.compile  # the parts' sums need eager steps
    probe = train_loader.sample(PROBE_IMAGES, seed=cfg.seed + 1) if cfg.is_qat else None  # the gradient probe's batch
    forward = eval_forward(cfg, model, device, log.write)
    state = resume(ckpt, out, cfg, device, model, optimizer, scheduler, log)
    batches = hessian_batches(cfg, train_loader) if cfg.is_qat and cfg.hessian.every else None
    if batches and state.epoch == 0 and not state.hessian:
        state.hessian.append(measure_trace(cfg, model, batches, 0))  # on the eager model, never compiled
    started, this_process = time.time(), []
    for epoch in range(state.epoch, cfg.optim.epochs):
        t0 = time.time()
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_epoch(model, step, train_loader, epoch))
        row["epoch_time"] = time.time() - t0
        row.update(epoch_composition(objective, model, probe))
        t1 = time.time()
        row.update(evaluate(model, test_loader, forward))
        row["eval_time"] = time.time() - t1
        check_finite(cfg, row)
        scheduler.step()
        if batches and ((epoch + 1) % cfg.hessian.every == 0 or epoch + 1 == cfg.optim.epochs):
            t2 = time.time()
            state.hessian.append(measure_trace(cfg, model, batches, epoch + 1))
            row["hessian_time"] = time.time() - t2
        state.history.append(row)
        this_process.append({**row, "steps": len(train_loader)})
        state.epoch = epoch + 1
        state.elapsed += time.time() - t0
        save_checkpoint(out, cfg, device, state, model, optimizer, scheduler)
        log.write(progress_line(cfg, row, row["train_images"], cfg.optim.epochs - epoch - 1))
        graphs = graph_report(step, forward) if len(this_process) == 1 else None
        if graphs is not None:
            log.write(graph_line(graphs))
    save_model(out / MODEL, model, cfg)
    metrics = assemble_metrics(cfg, state, device, time.time() - started)
    if cfg.runtime.compile and this_process:
        metrics["compile_seconds"] = compile_seconds(this_process)
    metrics["precision"]["kernels_in_force"] = kernels
    if kernels == "triton":  # the launch parameters in force (FPQ_KERNEL_TUNING; '' is the defaults)
        from fpq.kernels.tuning import current, spell

        metrics["precision"]["kernel_tuning"] = spell(current()) or "default"
    graphs = graph_report(step, forward)
    if graphs is not None:
        metrics["precision"]["cuda_graph"] = graphs
    write_json(out / METRICS, metrics)
    (out / FAILED).unlink(missing_ok=True)
    return metrics


def _identity(cfg: RunConfig) -> dict:
    return {"run_id": cfg.run_id, "cell": Cell.from_config(cfg).as_dict(),
            "stage": "qat" if cfg.is_qat else "teacher"}


def assemble_metrics(cfg: RunConfig, state: RunState, device: torch.device, wall_this_process: float) -> dict:
    final = state.history[-1]
    best = max(state.history, key=lambda r: r["test_acc"])
    return {
        **_identity(cfg), "status": "ok", "epochs": cfg.optim.epochs,
        "final": {"top1": final["test_acc"], "test_loss": final["test_loss"], "epoch": final["epoch"]},
        "best": {"top1": best["test_acc"], "epoch": best["epoch"], "label": "best epoch (not the reported number)"},
        "history": state.history, "hessian_trajectory": state.hessian,
        "wall_time_s": state.elapsed, "wall_time_this_process_s": wall_this_process,
        "config": to_dict(cfg), **provenance(cfg.runtime, device),
    }


def record_failure(out: str | Path, cfg: RunConfig, err: BaseException, as_result: bool = False) -> Path:
    """A run that stopped with an error leaves failed.json. With `as_result` (a RunFailure the
    workflow records) it writes metrics.json with status "failed" instead: the run is finished,
    tables mark its cell as failed, and the jobs after it still run."""
    out = Path(out)
    record = {**_identity(cfg), "status": "failed", "error": f"{type(err).__name__}: {err}", "config": to_dict(cfg)}
    if as_result:
        (out / FAILED).unlink(missing_ok=True)
        return write_json(out / METRICS, record)
    return write_json(out / FAILED, record)
