"""The kernels as PyTorch custom ops with autograd: `fake_quant` and `csd_layer`.

`torch.library.custom_op` makes each launch one opaque op: eager, captured by a CUDA graph
(nothing here syncs with the host: the SFP gate and seed are device tensors), and traced by
torch.compile through the fake (meta) implementations. The backward of each op is another op,
so a double backward (Hessian-vector products) is not available here: the Hessian measurement
runs the torch path (`fpq.quant.kernel_path`).
"""
from __future__ import annotations

import contextlib

import torch
import triton

from fpq.kernels import csd as csd_k
from fpq.kernels import fake_quant as fq_k
from fpq.kernels.tuning import current, warps

NOISE = {None: 0, "after": 1, "before": 2}  # SFP placement -> the kernels' NOISE constant


def _device(x: torch.Tensor):
    """Triton launches on the current CUDA device: make it x's."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _dense(x: torch.Tensor) -> torch.Tensor:
    """x with dim 0 outermost and no gaps (NCHW or channels_last are taken as they are)."""
    dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    return x if dense else x.contiguous()


def _like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """t laid out in memory as ref (an incoming gradient may come in another layout)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref, dtype=t.dtype).copy_(t)


def _rows(x: torch.Tensor, step: torch.Tensor) -> tuple[int, int]:
    """(channels, elements per channel): one row per tensor, or one per output channel."""
    channels = step.numel()
    if channels > 1 and step.shape[0] != channels:
        raise ValueError(f"a per-channel step must run along dim 0, got shape {tuple(step.shape)}")
    return channels, x.numel() // channels


def _scalar(t: torch.Tensor | None, like: torch.Tensor, dtype) -> torch.Tensor:
    return t if t is not None else torch.zeros((), device=like.device, dtype=dtype)


# ----------------------------------------------------------------------------- fake quantization
@torch.library.custom_op("fpq::fake_quant", mutates_args=())
def _fake_quant(x: torch.Tensor, step: torch.Tensor, offset: torch.Tensor, gate: torch.Tensor | None,
                seed: torch.Tensor | None, qmax: int, shift: bool, noise: int, grad_scale: float) -> torch.Tensor:
    x = _dense(x)
    out = torch.empty_like(x)
    channels, per_channel = _rows(x, step)
    rows, block = fq_k.tiles(per_channel, channels)
    with _device(x):
        fq_k.fake_quant_fwd_kernel[fq_k.grid(per_channel, channels)](
            x, out, step.contiguous(), offset.contiguous(), _scalar(gate, x, torch.float32),
            _scalar(seed, x, torch.int32), channels, per_channel, qmax, SHIFT=shift, NOISE=noise, ROWS=rows,
            BLOCK_SIZE=block, num_warps=warps(rows * block, current()["fq_warps"]))
    return out


@_fake_quant.register_fake
def _(x, step, offset, gate, seed, qmax, shift, noise, grad_scale):
    return torch.empty_like(x)


@torch.library.custom_op("fpq::fake_quant_backward", mutates_args=())
def _fake_quant_backward(grad: torch.Tensor, x: torch.Tensor, step: torch.Tensor, offset: torch.Tensor,
                         gate: torch.Tensor | None, seed: torch.Tensor | None, qmax: int, shift: bool, noise: int,
                         need_step: bool, need_offset: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, sum of grad * d out/d s, sum of grad outside) per row: the step's and offset's
    gradients before LSQ's scale."""
    x = _dense(x)
    grad = _like(grad, x)
    grad_x = torch.empty_like(grad)
    channels, per_channel = _rows(x, step)
    rows, block = fq_k.tiles(per_channel, channels)
    grid = fq_k.grid(per_channel, channels)
    blocks = grid[0]
    step_parts = x.new_zeros((channels, blocks), dtype=torch.float32)
    offset_parts = x.new_zeros((channels, blocks), dtype=torch.float32)
    with _device(x):
        fq_k.fake_quant_bwd_kernel[grid](
            grad, x, grad_x, step_parts, offset_parts, step.contiguous(), offset.contiguous(),
            _scalar(gate, x, torch.float32), _scalar(seed, x, torch.int32), channels, per_channel, qmax, blocks,
            SHIFT=shift, NOISE=noise, NEED_STEP=need_step, NEED_OFFSET=need_offset, ROWS=rows, BLOCK_SIZE=block,
            num_warps=warps(rows * block, current()["fq_warps"]))
    # The second, small reduction: torch's sum over each row's block partials, in a fixed order.
    return grad_x, step_parts.sum(1), offset_parts.sum(1)


@_fake_quant_backward.register_fake
def _(grad, x, step, offset, gate, seed, qmax, shift, noise, need_step, need_offset):
    channels = step.numel()
    return torch.empty_like(x, dtype=grad.dtype), x.new_empty((channels,), dtype=torch.float32), \
        x.new_empty((channels,), dtype=torch.float32)


def _fq_setup(ctx, inputs, output):
    x, step, offset, gate, seed, qmax, shift, noise, grad_scale = inputs
    ctx.save_for_backward(x, step, offset, gate, seed)
    ctx.qmax, ctx.shift, ctx.noise, ctx.grad_scale = qmax, shift, noise, grad_scale


def _fq_backward(ctx, grad):
    x, step, offset, gate, seed = ctx.saved_tensors
    need_step, need_offset = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
    grad_x, step_sum, offset_sum = _fake_quant_backward(grad, x, step, offset, gate, seed, ctx.qmax, ctx.shift,
                                                        ctx.noise, need_step, need_offset)
    g = ctx.grad_scale
    grad_step = (step_sum.reshape(step.shape) * g).to(step.dtype) if need_step else None
    grad_offset = (-offset_sum.reshape(offset.shape) * step.detach() * g).to(offset.dtype) if need_offset else None
    return grad_x, grad_step, grad_offset, None, None, None, None, None, None


_fake_quant.register_autograd(_fq_backward, setup_context=_fq_setup)


def fake_quant(x: torch.Tensor, step: torch.Tensor, offset: torch.Tensor, qmax: int, grad_scale: float,
               shift_before_round: bool = False, noise: str | None = None, gate: torch.Tensor | None = None,
               seed: torch.Tensor | None = None) -> torch.Tensor:
    """`fpq.quant.functional.fake_quant_fused` in two Triton passes; with `noise` ("after" or
    "before") SFP's U[-s/2, s/2] times `gate` (a 0/1 device scalar), drawn from `seed` (an int32
    device scalar) inside the same pass."""
    if (noise is not None) != (gate is not None and seed is not None):
        raise ValueError("SFP noise needs its placement, gate and seed together")
    return _fake_quant(x, step, offset, gate, seed, int(qmax), bool(shift_before_round), NOISE[noise],
                       float(grad_scale))


# ----------------------------------------------------------------------------- CSD
def _map3(z: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """z (dense, made so if needed) and its [N, C, HW] strides."""
    z = _dense(z)
    if z.dim() != 4:
        raise ValueError(f"CSD standardizes conv maps [N, C, H, W], got shape {tuple(z.shape)}")
    return z, (z.stride(0), z.stride(1), z.stride(3))


@torch.library.custom_op("fpq::csd_moments", mutates_args=())
def _csd_moments(zs: torch.Tensor, zt: torch.Tensor, sample: bool) -> torch.Tensor:
    """[5, N, C] fp32: the shifted sums S1, S2, T1, T2, X of every (sample, channel)."""
    (zs, ss), (zt, ts) = _map3(zs), _map3(zt)
    n, c, h, w = zs.shape
    out = torch.empty((csd_k.MOMENTS, n, c), device=zs.device, dtype=torch.float32)
    block_c, block_hw = csd_k.blocks(c, h * w)
    with _device(zs):
        csd_k.csd_moments_kernel[(n, triton.cdiv(c, block_c))](
            zs, zt, out, n * c, c, h * w, *ss, *ts, SAMPLE=sample, BLOCK_C=block_c, BLOCK_HW=block_hw,
            num_warps=warps(block_c * block_hw, current()["csd_warps"]))
    return out


@_csd_moments.register_fake
def _(zs, zt, sample):
    return zs.new_empty((csd_k.MOMENTS, zs.shape[0], zs.shape[1]), dtype=torch.float32)


@torch.library.custom_op("fpq::csd_grad", mutates_args=())
def _csd_grad(zs: torch.Tensor, zt: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """alpha zs + beta zt + gamma per element; coef [3, N or 1, C] fp32; laid out as zs."""
    (zs, ss), (zt, ts) = _map3(zs), _map3(zt)
    n, c, h, w = zs.shape
    coef = coef.contiguous()
    dz = torch.empty_like(zs)
    block_c, block_hw = csd_k.blocks(c, h * w)
    with _device(zs):
        csd_k.csd_grad_kernel[(n, triton.cdiv(c, block_c), triton.cdiv(h * w, block_hw))](
            zs, zt, dz, coef, c, h * w, *ss, *ts, c if coef.shape[1] > 1 else 0, coef.shape[1] * c,
            BLOCK_C=block_c, BLOCK_HW=block_hw, num_warps=warps(block_c * block_hw, current()["csd_warps"]))
    return dz


@_csd_grad.register_fake
def _(zs, zt, coef):
    return torch.empty_like(zs)


def csd_statistics(moments: torch.Tensor, zs: torch.Tensor, zt: torch.Tensor, sample: bool, eps: float):
    """Per group ([N, C] for sample statistics, [1, C] for batch): both means, both 1/sqrt(var + eps),
    q_s = var_s/(var_s + eps) and rho = mean(x t), from the five shifted sums (tiny tensors)."""
    n, _, h, w = zs.shape
    count = h * w
    ks, kt = zs[:, :, 0, 0].float(), zt[:, :, 0, 0].float()
    if not sample:  # one group per channel over the batch: sums over samples, shift of sample 0
        moments, count, ks, kt = moments.sum(1, keepdim=True), count * n, ks[:1], kt[:1]
    s1, s2, t1, t2, cross = (m / count for m in moments.unbind(0))
    var_s = (s2 - s1 * s1).clamp_min(0)
    var_t = (t2 - t1 * t1).clamp_min(0)
    r_s, r_t = torch.rsqrt(var_s + eps), torch.rsqrt(var_t + eps)
    rho = (cross - s1 * t1) * r_s * r_t
    return ks + s1, kt + t1, r_s, r_t, var_s * r_s * r_s, var_t * r_t * r_t, rho


@torch.library.custom_op("fpq::csd_layer", mutates_args=())
def _csd_layer(zs: torch.Tensor, zt: torch.Tensor, sample: bool, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(this layer's CSD loss, the per-group coefficients [5, groups, C] its backward needs)."""
    moments = _csd_moments(zs, zt, sample)
    mu_s, mu_t, r_s, r_t, q_s, q_t, rho = csd_statistics(moments, zs, zt, sample, eps)
    loss = (q_s + q_t - 2 * rho).mean()  # mean over groups of mean((x - t)^2); groups have equal size
    return loss, torch.stack((mu_s, mu_t, r_s, r_t, q_s - rho))


@_csd_layer.register_fake
def _(zs, zt, sample, eps):
    groups = zs.shape[0] if sample else 1
    return zs.new_empty((), dtype=torch.float32), zs.new_empty((5, groups, zs.shape[1]), dtype=torch.float32)


def _csd_setup(ctx, inputs, output):
    zs, zt, _, _ = inputs
    ctx.save_for_backward(zs, zt, output[1])
    ctx.mark_non_differentiable(output[1])


def _csd_backward(ctx, grad_loss, _grad_coef):
    """dL/dz = scale r_s [(1 - k) x - t], k = q_s - rho, scale = 2 grad / numel: a z_s + b z_t + c."""
    zs, zt, saved = ctx.saved_tensors
    mu_s, mu_t, r_s, r_t, k = saved.unbind(0)
    scale = grad_loss.float() * (2.0 / zs.numel())
    alpha = scale * r_s * r_s * (1 - k)
    beta = -scale * r_s * r_t
    gamma = -alpha * mu_s - beta * mu_t
    return _csd_grad(zs, zt, torch.stack((alpha, beta, gamma))), None, None, None


_csd_layer.register_autograd(_csd_backward, setup_context=_csd_setup)


def csd_layer(zs: torch.Tensor, zt: torch.Tensor, stats: str = "sample", eps: float = 1e-5) -> torch.Tensor:
    """mean((standardize(zs) - standardize(zt))^2) of one layer (Eqs. 16-17); zt carries no gradient."""
    return _csd_layer(zs, zt.detach(), stats == "sample", float(eps))[0]
