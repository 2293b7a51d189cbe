"""The affine fake-quantization formula of Sec. 3.1, two ways that must agree.

x_int = clip(round(x/s) + z, 0, 2^b - 1),   x_hat = (x_int - z) * s

`fake_quant_reference` composes the named parts (scale, round-STE, clamp); `fake_quant_fused`
is one autograd function that saves only x and recomputes the mask in backward (less memory,
fewer kernels). Its backward is written in differentiable ops, so double backward works too.
tests/test_quant_math.py proves both equal in value, gradient and second derivative.
"""
from __future__ import annotations

import torch

from fpq.quant.ste import clip_ste, round_ste, scale_grad


def fake_quant_reference(x, step, offset, qmax: int, grad_scale: float):
    s = scale_grad(step, grad_scale)
    v = x / s
    x_int = clip_ste(round_ste(v) + offset, v + offset, qmax)
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
        with torch.no_grad():
            # Under the STE, d x_hat/d s is locally constant in x and s (round passes gradient 1,
            # so round(v) - v has zero derivative): compute it as a constant.
            v = x / step
            r = torch.round(v)
            below, above = v + offset <= 0, v + offset >= ctx.qmax  # LSQ's clip region (unrounded)
            inside = ~(below | above)
            ds = torch.where(inside, r - v, torch.where(below, -offset, ctx.qmax - offset))
        grad_x = grad * inside
        grad_step = (grad * ds).sum_to_size(step.shape) * ctx.grad_scale
        return grad_x, grad_step, None, None, None


def fake_quant_fused(x, step, offset, qmax: int, grad_scale: float):
    """Same values and gradients as `fake_quant_reference` for a fixed (non-learned) offset."""
    return _FusedLsq.apply(x, step, offset, qmax, grad_scale)
