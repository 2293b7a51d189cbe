"""The fake-quantization formulas, each two ways that must agree.

Affine grid of Sec. 3.1 (LSQ, fixed integer offset z):
    x_int = clip(round(x/s) + z, 0, 2^b - 1),   x_hat = (x_int - z) * s
LSQ+ (learned, fractional offset): x_int = clip(round(x/s + z), 0, 2^b - 1).
PACT: y = clip(x, lower, alpha), x_hat = round((y - lower)/s) * s + lower with s = (alpha - lower)/Q
(s detached), gradient to alpha from the clip only.

The `*_reference` functions compose the named parts (scale, round-STE, clip-STE); the `*_fused`
ones are single autograd functions that save the input (and an fp32 output that is kept anyway)
and recompute the masks in backward (fewer kernels and saved buffers). Both compute in at least
fp32 and return the input's dtype. Their backward is written in differentiable ops, so
double backward works too. tests/quant/test_quant_math.py proves the LSQ/LSQ+ pair equal in
value, gradient and second derivative, and the PACT pair equal in value and gradient.
"""
from __future__ import annotations

import torch

from fpq.quant.ste import clip_ste, round_ste, scale_grad


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Fake quant is computed in at least fp32: x/s in bf16 has 8 significant bits, so under
    autocast the rounding decision itself would be wrong near every half level (and off by whole
    levels at 8 bits). Inputs are upcast, outputs return in the input's dtype."""
    return torch.promote_types(x.dtype, torch.float32)


def fake_quant_reference(x, step, offset, qmax: int, grad_scale: float, shift_before_round: bool = False):
    """LSQ (round, then add z) or, with `shift_before_round`, LSQ+ (add z, then round)."""
    s, z = scale_grad(step, grad_scale), scale_grad(offset, grad_scale)
    v = x.to(compute_dtype(x)) / s
    if shift_before_round:
        shifted = v + z
        out = (clip_ste(round_ste(shifted), shifted, qmax) - z) * s
    else:
        out = (clip_ste(round_ste(v) + z, v + z, qmax) - z) * s
    return out.to(x.dtype)


def _levels(v: torch.Tensor, offset: torch.Tensor, qmax: int, shift_before_round: bool) -> torch.Tensor:
    """clip(round(v) + z) (LSQ) or clip(round(v + z)) (LSQ+), in place on a fresh buffer."""
    out = torch.round(v + offset) if shift_before_round else torch.round(v).add_(offset)
    return out.clamp_(0, qmax)


class _FusedAffine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, offset, qmax, grad_scale, shift_before_round):
        xc = x.to(compute_dtype(x))
        out = _levels(xc / step, offset, qmax, shift_before_round).sub_(offset).mul_(step)
        # In fp32 `out` is returned, and kept by the next conv anyway, so backward reuses it; after
        # an upcast it is a temporary, so backward recomputes the levels instead of keeping it.
        ctx.save_for_backward(x, step, offset, out if xc is x else None)
        ctx.qmax, ctx.grad_scale, ctx.shift = qmax, grad_scale, shift_before_round
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, step, offset, out = ctx.saved_tensors
        g = ctx.grad_scale
        _, need_step, need_offset = ctx.needs_input_grad[:3]
        with torch.no_grad():
            v = x.to(compute_dtype(x)) / step
            # LSQ's region on the unrounded value x/s + z (v itself is needed only to recompute levels)
            shifted = v.add_(offset) if out is not None else v + offset
            inside = ((shifted > 0) & (shifted < ctx.qmax)).to(grad.dtype)  # one conversion, used twice
        grad_x = grad * inside
        grad_step = grad_offset = None
        if need_step or need_offset:
            with torch.no_grad():
                # d x_hat/d s: round(u) - u inside (u = x/s + z), level - z outside; d x_hat/d z:
                # 0 inside, -s outside. Under the STE, round(u) - u and the level are locally
                # constant, so they are computed as constants; the explicit z and s terms below
                # stay differentiable so double backward matches the reference chain.
                if out is not None:
                    ds = (out - x * inside).div_(step)
                else:
                    ds = _levels(v, offset, ctx.qmax, ctx.shift).sub_(offset).sub_(v * inside)
                outside = 1.0 - inside if need_offset else None  # only a learned offset needs it
            if need_step:
                if need_offset:  # value unchanged; carries the reference's d/dz of the outside term
                    ds = ds + outside * (offset.detach() - scale_grad(offset, g))
                grad_step = (grad * ds).sum_to_size(step.shape) * g
            if need_offset:
                grad_offset = -(grad * outside).sum_to_size(offset.shape) * scale_grad(step, g) * g
        return grad_x, grad_step, grad_offset, None, None, None


def fake_quant_fused(x, step, offset, qmax: int, grad_scale: float, shift_before_round: bool = False):
    """Same values and gradients as `fake_quant_reference`."""
    return _FusedAffine.apply(x, step, offset, qmax, grad_scale, shift_before_round)


def pact_lower(alpha: torch.Tensor, signed: torch.Tensor) -> torch.Tensor:
    """The clip's lower bound: -alpha for signed inputs, 0 for post-ReLU ones."""
    return torch.where(signed, -alpha, torch.zeros_like(alpha))


def pact_reference(x, alpha, signed, qmax: int):
    """PACT's rule: d/dx = 1 on [lower, alpha), d/dalpha = 1 for x >= alpha (-1 for x < -alpha, signed)."""
    lower = pact_lower(alpha, signed)
    xc = x.to(compute_dtype(x))
    y = torch.where(xc >= alpha, alpha, torch.where(xc < lower, lower, xc))
    lo, step = lower.detach(), ((alpha - lower) / qmax).detach()
    y_q = torch.round((y - lo) / step) * step + lo
    return (y_q.detach() + (y - y.detach())).to(x.dtype)  # value exactly y_q; gradient of the clip (PACT)


class _FusedPact(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, signed, qmax):
        lower = pact_lower(alpha, signed)
        step = (alpha - lower) / qmax
        xc = x.to(compute_dtype(x))
        out = torch.maximum(torch.minimum(xc, alpha), lower).sub_(lower).div_(step).round_().mul_(step).add_(lower)
        ctx.save_for_backward(x, alpha, signed)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, alpha, signed = ctx.saved_tensors
        with torch.no_grad():
            lower = pact_lower(alpha, signed)
            above, below = x >= alpha, x < lower
        grad_x = grad * ~(above | below)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            below_signed = below & signed  # lower = -alpha moves with alpha only when signed
            grad_alpha = ((grad * above).sum_to_size(alpha.shape)
                          - (grad * below_signed).sum_to_size(alpha.shape))
        return grad_x, grad_alpha, None, None


def pact_fused(x, alpha, signed, qmax: int):
    """Same values and gradients as `pact_reference`."""
    return _FusedPact.apply(x, alpha, signed, qmax)
