"""Distillation terms: CSD (Eqs. 15-17, 22) and Hinton KD (the KD baseline).

CSD compares, for every conv layer, the per-channel standardized conv outputs (before BN) of
the quantized student and the frozen FP teacher. Standardization removes each channel's scale
and shift, so the student is asked to match the teacher's feature *shape*, which pushes its
gradient towards zero (the first-order term of Eq. 7) without fighting the quantizer's range.

Two implementations of the same Eqs. 16-17. `csd_loss` (the default) is built for memory speed:
each map's per-(sample, channel) statistics in fp32 by one reduction over the map in the layout
and dtype it has, the teacher's side standardized once under no_grad, and standardize +
difference + square + mean in one autograd function whose backward is one closed-form pointwise
pass (`_FusedCSD`). `csd_loss_reference` is the plain form (instance_norm + MSE) it is tested
against (tests/method/test_distill.py: value and gradient).
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


def _check_pairs(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> None:
    if len(student) != len(teacher):
        raise ValueError(f"CSD pairs layers by position: student has {len(student)} conv outputs, "
                         f"teacher {len(teacher)}")


def csd_loss_reference(student: list[torch.Tensor], teacher: list[torch.Tensor], stats: str = "sample",
                       eps: float = 1e-5) -> torch.Tensor:
    """Eq. 17 written plainly, `sum` reading: sum over taps of the MSE of standardized outputs (the
    oracle of `csd_loss`; every map upcast to fp32, standardized by instance_norm, then an MSE)."""
    _check_pairs(student, teacher)
    total = student[0].new_zeros((), dtype=torch.float32)
    for zs, zt in zip(student, teacher):
        zt = standardize(zt.detach().float(), stats, eps)
        total = total + F.mse_loss(standardize(zs.float(), stats, eps), zt)
    return total


def _dims(stats: str) -> tuple[int, ...]:
    return (2, 3) if stats == "sample" else (0, 2, 3)


def _centred(z: torch.Tensor, dims: tuple[int, ...], eps: float):
    """z - mu (in z's memory format), mu, var and 1/sqrt(var + eps) per group, all fp32.

    Two reductions, both sums with fp32 accumulation over the map in the layout and dtype it has:
    no layout copy for channels_last, and for a bf16 map no separate upcast (z - mu promotes).
    Centring before squaring keeps the variance free of cancellation (sum and sum of squares in
    one pass would not be); eager torch's one-pass Welford `var_mean` returns bf16 statistics
    for a bf16 map and took 64 ms against 4 ms for a sum on one 4M-element map on a 2-core CPU.
    Under torch.compile (`runtime.csd_compile`) the passes fuse."""
    n = 1
    for d in dims:  # a loop, not math.prod of a generator: torch.compile traces it
        n *= z.shape[d]
    mean = torch.sum(z, dims, keepdim=True, dtype=torch.float32) / n
    centred = z - mean
    var = torch.linalg.vector_norm(centred, 2, dims, keepdim=True).square() / n
    return centred, mean, var, torch.rsqrt(var + eps)


@torch.no_grad()
def standardized_target(zt: torch.Tensor, stats: str, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's side, once per step and with no autograd state: its standardized map (fp32,
    in the map's layout) and the per-group mean of its square, var / (var + eps)."""
    centred, _, var, rstd = _centred(zt, _dims(stats), eps)
    return centred.mul_(rstd), var * rstd * rstd


class _FusedCSD(torch.autograd.Function):
    """mean((standardize(z_s) - t)^2) of one layer, with a closed-form backward.

    With x = (z - mu) r, r = (var + eps)^-1/2, d = x - t and n elements per group, M in all:
        dL/dz = (2 r / M) [d - mean_g(d) - x mean_g(d x)]          (the backward of a norm layer)
    mean_g(x) = 0 and mean_g(t) = 0 exactly (both are centred), so mean_g(d) = 0, and
        mean_g(d x) = mean_g(x^2) - mean_g(x t) = (q_s - q_t + mean_g(d^2)) / 2,   q = var / (var + eps),
    which the forward has already reduced. So the gradient is a z + b t + c per group: one pass over
    z and t, and nothing of the forward's fp32 intermediates is kept but t.
    """

    @staticmethod
    def forward(ctx, zs: torch.Tensor, target: torch.Tensor, q_t: torch.Tensor, dims: tuple[int, ...], eps: float):
        centred, mean, var, rstd = _centred(zs, dims, eps)
        minus_d = torch.addcmul(target, centred, rstd, value=-1)  # t - x: standardize and difference, one pass
        per_group = torch.linalg.vector_norm(minus_d, 2, dims, keepdim=True).square() / (zs.numel() / mean.numel())
        ctx.save_for_backward(zs, target, mean, rstd, (var * rstd * rstd - q_t + per_group) / 2)
        return per_group.mean()  # groups have equal size: the mean over groups is the mean over all

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        zs, target, mean, rstd, k = ctx.saved_tensors
        scale = grad * (2.0 / zs.numel())
        a = scale * rstd * rstd * (1 - k)  # dL/dz = a z - scale r t - a mu
        dz = torch.addcmul(-a * mean, zs, a).addcmul_(target, -scale * rstd)
        return dz.to(zs.dtype), None, None, None, None


CSD_REDUCTIONS = ("sum", "mean", "elements")


def tap_weights(student: list[torch.Tensor], reduce: str) -> list[float]:
    """The factor of each tap's mean squared difference in the CSD loss (the paper is silent: Eq. 17
    writes a sum of squared norms over layers and channels, its text calls it an MSE):
    `sum`: 1 (the sum of per-tap means), `mean`: 1 / taps (independent of depth), `elements`: C*H*W
    (Eq. 17 literally: squared norms summed over channels and positions, mean over the batch).

    >>> z = [torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 2, 2)]
    >>> tap_weights(z, "sum"), tap_weights(z, "mean"), tap_weights(z, "elements")
    ([1.0, 1.0], [0.5, 0.5], [48.0, 20.0])
    """
    if reduce == "sum":
        return [1.0] * len(student)
    if reduce == "mean":
        return [1.0 / len(student)] * len(student)
    if reduce == "elements":
        return [float(z.numel() // z.shape[0]) for z in student]
    raise ValueError(f"csd reduce {reduce!r} is not one of {CSD_REDUCTIONS}")


def csd_layers(student: list[torch.Tensor], teacher: list[torch.Tensor], stats: str = "sample",
               eps: float = 1e-5, kernels: str = "torch") -> list[torch.Tensor]:
    """Eqs. 16-17 per tap: the mean squared difference of standardized outputs, one scalar a tap.

    Taps are paired by position; the teacher side carries no gradient. The same formula as
    `csd_loss_reference` (value and gradient equal to rounding), at memory speed; with
    `kernels="triton"` each tap is two Triton passes (`fpq.kernels.ops.csd_layer`).
    """
    _check_pairs(student, teacher)
    if kernels == "triton":
        from fpq.kernels.ops import csd_layer

        return [csd_layer(zs, zt, stats, eps) for zs, zt in zip(student, teacher)]
    dims = _dims(stats)
    out = []
    for zs, zt in zip(student, teacher):
        target, q_t = standardized_target(zt.detach(), stats, eps)
        out.append(_FusedCSD.apply(zs, target, q_t, dims, eps))
    return out


def combine(per_tap: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """sum_l w_l * loss_l, added in tap order (a weight of 1 multiplies nothing)."""
    total = per_tap[0].new_zeros((), dtype=torch.float32)
    for loss, w in zip(per_tap, weights):
        total = total + (loss if w == 1.0 else loss * w)
    return total


def csd_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], stats: str = "sample",
             eps: float = 1e-5, kernels: str = "torch", reduce: str = "sum") -> torch.Tensor:
    """Eq. 17: the taps' mean squared differences of standardized outputs, combined by `reduce`
    (`tap_weights`; `sum`, the default, is the sum over taps of the per-tap means)."""
    return combine(csd_layers(student, teacher, stats, eps, kernels), tap_weights(student, reduce))


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.: T^2 * KL(softmax(t/T) || softmax(s/T)), batch mean."""
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t
