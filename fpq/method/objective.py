"""The training loss of a method: CE, plus KD and/or CSD against the frozen teacher.

With `compile_mode` the whole loss (student forward with its SFP gates and CSD taps, the
teacher's forward, CSD and KD) is one `torch.compile`d function: teacher and student share one
graph, so inductor can fuse the standardization into the convolutions' epilogues and CUDA graphs
cover the teacher too. Without it, the teacher's forward is `fpq.method.teacher.TeacherForward`
(no autograd state, bf16 weights, optionally a CUDA graph: `teacher_cuda_graph`) and CSD the
memory-speed `csd_loss` (its Triton kernels with `kernels="triton"`), itself compiled alone when
`csd_compile` asks.
"""
from __future__ import annotations

import functools
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from fpq.method.distill import csd_loss, kd_loss
from fpq.method.registry import MethodSpec
from fpq.method.teacher import TeacherForward, autocast_bf16
from fpq.models import ConvTaps


def compiled(fn, mode: str):
    """torch.compile with static shapes: a training step sees one batch shape (the loader drops
    the last partial batch when compiling), so no dynamic-shape recompile."""
    return torch.compile(fn, mode=mode, dynamic=False)


class LossSettings(Protocol):
    """What the loss reads of a run's quant settings (`fpq.config.QuantConfig` has these)."""

    kd_temperature: float
    csd_lambda: float
    csd_stats: str
    csd_eps: float


class Objective:
    """loss(x, y) -> (loss, logits) for the student; one teacher forward per step when needed."""

    def __init__(self, spec: MethodSpec, quant: LossSettings, student: nn.Module, teacher: nn.Module | None,
                 student_bf16: bool = False, teacher_bf16: bool = False, compile_mode: str | None = None,
                 csd_compile: bool = False, teacher_cuda_graph: bool = False, step_graph: bool = False,
                 kernels: str = "torch"):
        if spec.uses_teacher_forward and teacher is None:
            raise ValueError(f"method {spec.name!r} needs a teacher")
        self.spec, self.quant, self.student, self.teacher = spec, quant, student, teacher
        self.student_bf16 = student_bf16  # the teacher's precision is its TeacherForward's
        self.kernels = kernels  # "triton": CSD through fpq.kernels (the student's quantizers are set apart)
        self.autocast_cache = True  # off for a CUDA-graph capture of the step (fpq.run.step.TrainStep)
        self.student_taps = ConvTaps(student) if spec.csd else None
        self.teacher_taps = ConvTaps(teacher) if spec.csd else None
        # Inside a compiled loss or a CUDA graph of the whole step the teacher is part of that graph:
        # no separate capture (graphs do not nest), no nested compile.
        self.teacher_run = TeacherForward(teacher, self.teacher_taps, teacher_bf16,
                                          teacher_cuda_graph and not compile_mode and not step_graph
                                          ) if teacher is not None else None
        csd = csd_loss if kernels == "torch" else functools.partial(csd_loss, kernels=kernels)  # fpq.kernels' CSD
        self.csd = compiled(csd, "default") if csd_compile and not compile_mode else csd
        self.loss = compiled(self._loss, compile_mode) if compile_mode else self._loss

    def teacher_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher_run(x)

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast_bf16(x, self.student_bf16, self.autocast_cache):
            logits = self.student(x)
        loss = F.cross_entropy(logits.float(), y)
        if self.spec.uses_teacher_forward:
            t_logits = self.teacher_forward(x)
            if self.spec.kd:
                loss = loss + kd_loss(logits, t_logits, self.quant.kd_temperature)
            if self.spec.csd:
                loss = loss + self.quant.csd_lambda * self.csd(self.student_taps.outputs, self.teacher_taps.outputs,
                                                               self.quant.csd_stats, self.quant.csd_eps)
        return loss, logits

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = [t for t in (self.student_taps, self.teacher_taps) if t is not None]
        for t in taps:
            t.start()
        try:
            return self.loss(x, y)
        finally:
            for t in taps:
                t.stop()
                t.outputs.clear()  # the graph keeps what backward needs; the list need not
