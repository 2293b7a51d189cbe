"""Hinton logit distillation from the frozen FP teacher (the KD baseline), as a method piece."""
from __future__ import annotations

from fpq.method.pieces.base import Key, Piece


class LogitDistillation(Piece):
    name, label = "kd", "KD"
    keys = (Key("kd_temperature", float, 4.0, "KD temperature T (loss CE + T^2 KL).", {"exclusiveMinimum": 0}),)
    teacher = True

    def make_term(self, quant, kernels: str = "torch"):
        from fpq.method.distill import kd_loss

        temperature = quant.kd_temperature
        return lambda out: kd_loss(out.logits, out.teacher_logits, temperature)

