"""The training loss of a method: CE, plus KD and/or CSD against the frozen teacher."""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from fpq.config import QuantConfig
from fpq.distill import csd_loss, kd_loss
from fpq.methods import MethodSpec
from fpq.models import ConvTaps


def autocast_bf16(x: torch.Tensor, enabled: bool):
    """bf16 autocast on x's device (CUDA or CPU) when enabled; otherwise a no-op (fp32)."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16) if enabled else nullcontext()


class Objective:
    """loss(x, y) -> (loss, logits) for the student; one teacher forward per step when needed."""

    def __init__(self, spec: MethodSpec, quant: QuantConfig, student: nn.Module, teacher: nn.Module | None,
                 forward=None, student_bf16: bool = False, teacher_bf16: bool = False):
        if spec.uses_teacher_forward and teacher is None:
            raise ValueError(f"method {spec.name!r} needs a teacher")
        self.spec, self.quant, self.teacher = spec, quant, teacher
        self.forward = student if forward is None else forward  # a compiled wrapper, or the module
        self.student_bf16, self.teacher_bf16 = student_bf16, teacher_bf16
        self.student_taps = ConvTaps(student) if spec.csd else None
        self.teacher_taps = ConvTaps(teacher) if spec.csd else None

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        taps = self.teacher_taps.collect() if self.teacher_taps else nullcontext([])
        with autocast_bf16(x, self.teacher_bf16), taps as feats:
            logits = self.teacher(x)
        return logits, feats

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = self.student_taps.collect() if self.student_taps else nullcontext([])
        with autocast_bf16(x, self.student_bf16), taps as student_feats:
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), y)
        if self.spec.uses_teacher_forward:
            t_logits, t_feats = self.teacher_forward(x)
            if self.spec.kd:
                loss = loss + kd_loss(logits, t_logits, self.quant.kd_temperature)
            if self.spec.csd:
                loss = loss + self.quant.csd_lambda * csd_loss(student_feats, t_feats, self.quant.csd_stats,
                                                               self.quant.csd_eps)
        return loss, logits
