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
        out = torch.round(x / step)  # one buffer, the rest in place
        out.add_(offset).clamp_(0, qmax).sub_(offset).mul_(step)
        ctx.save_for_backward(x, out, step, offset)  # `out` is the next conv's saved input anyway
        ctx.qmax, ctx.grad_scale = qmax, grad_scale
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out, step, offset = ctx.saved_tensors
        with torch.no_grad():
            # LSQ's region on the unrounded value; under the STE the factors below are locally
            # constant in x and s, so they are computed as constants (double backward stays exact).
            shifted = (x / step).add_(offset)
            inside = (shifted > 0) & (shifted < ctx.qmax)
            # d x_hat/d s = x_hat/s - v inside (= round(v) - v), x_hat/s = level - z outside.
            ds = (out - x * inside).div_(step)
        grad_x = grad * inside
        grad_step = (grad * ds).sum_to_size(step.shape) * ctx.grad_scale
        return grad_x, grad_step, None, None, None


def fake_quant_fused(x, step, offset, qmax: int, grad_scale: float):
    """Same values and gradients as `fake_quant_reference` for a fixed (non-learned) offset."""
    return _FusedLsq.apply(x, step, offset, qmax, grad_scale)
