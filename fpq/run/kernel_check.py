"""`runtime.kernels`: the fused Triton kernels where they are proven here, else the torch path.

The kernels run on CUDA only (a CPU run is always the torch path). Before a run uses them, a
one-time self-check per device and dtype compiles and runs every kernel the run can call on
small tensors and compares it with the torch formulas: the quantizer's values bit for bit, its
gradients and CSD's value and gradient within rounding, SFP's noise inside [-s/2, s/2]. A kernel
that fails to compile or to agree sends the run down the torch path with one train.log line.
"""
from __future__ import annotations

import time

import torch

from fpq import kernels as triton_kernels
from fpq.method.distill import csd_loss_reference
from fpq.quant.functional import fake_quant_reference

_CHECKED: dict[tuple, str | None] = {}  # (device, dtypes) -> None (passed) or why it failed


def _close(got: torch.Tensor, want: torch.Tensor, tol: float) -> bool:
    scale = want.float().abs().max().clamp_min(1.0)
    return bool(((got.float() - want.float()).abs().max() <= tol * scale).item())


def _check_quantizer(device: torch.device, dtype: torch.dtype, per_channel: bool, shift: bool,
                     channels_last: bool) -> str | None:
    from fpq.kernels.ops import fake_quant

    gen = torch.Generator().manual_seed(7)
    shape = (6, 5, 9, 11)
    x = (torch.randn(shape, generator=gen) * 2).to(device=device, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    pshape = (shape[0], 1, 1, 1) if per_channel else ()
    step = (torch.rand(pshape, generator=gen) * 0.4 + 0.2).to(device).requires_grad_()
    offset = (torch.randint(0, 3, pshape, generator=gen).float()
              + (torch.rand(pshape, generator=gen) if shift else 0)).to(device).requires_grad_(shift)
    grad = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    params = [step, offset] if shift else [step]
    outs = []
    for fn in (fake_quant, fake_quant_reference):
        xi = x.detach().clone().requires_grad_()
        out = fn(xi, step, offset, 3, 0.05, shift)
        outs.append((out, torch.autograd.grad(out, [xi, *params], grad)))
    (got, got_grads), (want, want_grads) = outs
    what = f"fake quant ({'per channel' if per_channel else 'per tensor'}, {'LSQ+' if shift else 'LSQ'}, {dtype})"
    if not torch.equal(got, want):
        return f"{what}: values differ from the torch formula"
    if not all(_close(a, b, 1e-4) for a, b in zip(got_grads, want_grads)):
        return f"{what}: gradients differ from the torch formula"
    if not per_channel:
        q = fake_quant(x, step.detach(), offset.detach(), 3, 0.05, shift).float()
        for placement in ("after", "before"):
            seed = torch.randint(0, 2 ** 31 - 1, (), device=device, dtype=torch.int32)
            noisy = fake_quant(x, step.detach(), offset.detach(), 3, 0.05, shift, noise=placement,
                               gate=torch.ones((), device=device), seed=seed).float()
            bound = 1.0 if placement == "before" else 0.5  # before: noise of s/2 can move one level
            if not bool(((noisy - q).abs() <= bound * step.detach() * 1.01 + 1e-2).all().item()):
                return f"SFP noise ({placement} the quantizer, {dtype}) outside its bound"
    return None


def _check_csd(device: torch.device, dtype: torch.dtype, stats: str) -> str | None:
    from fpq.kernels.ops import csd_layer

    gen = torch.Generator().manual_seed(11)
    zs = torch.randn(4, 6, 5, 7, generator=gen).to(device=device, dtype=dtype).requires_grad_()
    zt = (torch.randn(4, 6, 5, 7, generator=gen) * 2 + 1).to(device=device, dtype=dtype)
    got = csd_layer(zs, zt, stats)
    want = csd_loss_reference([zs], [zt], stats)
    (g_got,), (g_want,) = torch.autograd.grad(got, [zs]), torch.autograd.grad(want, [zs])
    if not (_close(got, want, 1e-3) and _close(g_got, g_want, 1e-3)):
        return f"CSD ({stats} statistics, {dtype}) differs from the torch formula"
    return None


def self_check(device: torch.device, dtypes: tuple[torch.dtype, ...]) -> str | None:
    """None when every kernel compiles and agrees on `device` for each dtype; else the first reason."""
    for dtype in dtypes:
        for per_channel, shift, channels_last in ((False, False, False), (False, True, True), (True, False, True),
                                                  (True, True, False)):
            reason = _check_quantizer(device, dtype, per_channel, shift, channels_last)
            if reason:
                return reason
        for stats in ("sample", "batch"):
            reason = _check_csd(device, dtype, stats)
            if reason:
                return reason
    return None


def choose_kernels(requested: str, device: torch.device, dtypes: tuple[torch.dtype, ...],
                   allow_cpu: bool = False) -> tuple[str, str | None]:
    """(the path a run takes, the train.log line saying why, or None). `allow_cpu` is for the tests:
    with TRITON_INTERPRET=1 the kernels run on CPU tensors; a CPU run never asks for it."""
    if requested == "torch" or (device.type != "cuda" and not allow_cpu):
        return "torch", None
    key = (str(device), dtypes)
    if key not in _CHECKED:
        t0 = time.perf_counter()
        reason = triton_kernels.available()
        if reason is None:
            try:
                reason = self_check(device, dtypes)
            except Exception as err:  # a kernel that does not compile here: the run goes on without it
                reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        _CHECKED[key] = reason
        if reason is None:
            return "triton", f"kernels: triton (self-check passed on {device} in {time.perf_counter() - t0:.1f} s)"
    reason = _CHECKED[key]
    if reason is None:
        return "triton", "kernels: triton (self-check passed earlier in this process)"
    return "torch", f"kernels: torch path instead of triton ({reason})"
