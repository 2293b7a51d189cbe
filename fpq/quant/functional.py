"""The affine fake-quantization formula of Sec. 3.1, two ways that must agree.

x_int = clip(round(x/s) + z, 0, 2^b - 1),   x_hat = (x_int - z) * s

`fake_quant_reference` composes the named parts (scale, round-STE, clamp); `fake_quant_fused`
is one autograd function that saves only x and recomputes the mask in backward (less memory,
fewer kernels). Its backward is written in differentiable ops, so double backward works too.
tests/test_quant_math.py proves both equal in value, gradient and second derivative.
"""
from __future__ import annotations

import torch

from fpq.quant.ste import round_ste, scale_grad


def fake_quant_reference(x, step, offset, qmax: int, grad_scale: float):
    s = scale_grad(step, grad_scale)
    x_int = torch.clamp(round_ste(x / s) + offset, 0, qmax)
    return (x_int - offset) * s


class _FusedLsq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, offset, qmax, grad_scale):
        ctx.save_for_backward(x, step, offset)
        ctx.qmax, ctx.grad_scale = qmax, grad_scale
        return (torch.clamp(torch.round(x / step) + offset, 0, qmax) - offset) * step

    @staticmethod
    def backward(ctx, grad):
        x, step, offset = ctx.saved_tensors
        v = x / step
        r = torch.round(v)
        shifted = r.detach() + offset
        below, above = shifted < 0, shifted > ctx.qmax
        inside = ~(below | above)
        grad_x = grad * inside
        # d x_hat / d s: round(v) - v inside the range, the clamped level (0 or qmax) minus z outside.
        ds = torch.where(inside, r - v, torch.where(below, -offset, ctx.qmax - offset))
        grad_step = (grad * ds).sum_to_size(step.shape) * ctx.grad_scale
        return grad_x, grad_step, None, None, None


def fake_quant_fused(x, step, offset, qmax: int, grad_scale: float):
    """Same values and gradients as `fake_quant_reference` for a fixed (non-learned) offset."""
    return _FusedLsq.apply(x, step, offset, qmax, grad_scale)
