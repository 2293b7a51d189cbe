"""Distillation terms: CSD (Eqs. 15-17, 22) and Hinton KD (the KD baseline).

CSD compares, for every conv layer, the per-channel standardized conv outputs (before BN) of
the quantized student and the frozen FP teacher. Standardization removes each channel's scale
and shift, so the student is asked to match the teacher's feature *shape*, which pushes its
gradient towards zero (the first-order term of Eq. 7) without fighting the quantizer's range.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def standardize(z: torch.Tensor, stats: str = "sample", eps: float = 1e-5) -> torch.Tensor:
    """Eq. 16: (z - mu) / sqrt(var + eps) per channel; over HxW per sample, or over BxHxW."""
    # instance_norm / batch_norm without affine compute exactly this (biased variance) in one
    # fused kernel, forward and backward: cheaper than a mean/var/sub/mul chain per layer.
    if stats == "sample":
        return F.instance_norm(z, eps=eps)
    return F.batch_norm(z, None, None, training=True, momentum=0.0, eps=eps)


def csd_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], stats: str = "sample",
             eps: float = 1e-5) -> torch.Tensor:
    """Eq. 17: sum over conv layers of the mean squared difference of standardized outputs.

    Layers are paired by position in `conv_layers()`; the teacher side carries no gradient.
    """
    if len(student) != len(teacher):
        raise ValueError(f"CSD pairs layers by position: student has {len(student)} conv outputs, "
                         f"teacher {len(teacher)}")
    total = student[0].new_zeros(())
    for zs, zt in zip(student, teacher):
        zt = standardize(zt.detach().float(), stats, eps)
        total = total + F.mse_loss(standardize(zs.float(), stats, eps), zt)
    return total


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.: T^2 * KL(softmax(t/T) || softmax(s/T)), batch mean."""
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t
