"""CSD (Eqs. 16-17) of one conv layer in two passes over memory: statistics, then the gradient.

A conv map is read as [N, C, HW] through its strides (NCHW and channels_last alike: H and W merge
in both), in tiles of [BLOCK_HW, BLOCK_C]. So NCHW is read along HW and channels_last along C,
both coalesced, with no layout copy.

Pass 1 (forward) reads the student's map zs and the teacher's zt once and sums, per (sample,
channel), with a shift K (the group's first element; the batch's first sample's for "batch"
statistics) that keeps the one-pass moments free of cancellation:
    S1 = sum(zs - Ks), S2 = sum((zs - Ks)^2), T1, T2 (the same of zt), X = sum((zs - Ks)(zt - Kt)).
From these five numbers per group (fpq.kernels.ops) come both means and variances, and the
group's loss mean((x - t)^2) = q_s + q_t - 2 rho, with x, t the standardized maps,
q = var / (var + eps) and rho = mean(x t): the loss needs no second pass.
Pass 2 (backward) writes dL/dzs = alpha zs + beta zt + gamma per element, with per-group
coefficients from those statistics (the closed form `fpq.method.distill._FusedCSD` uses).
"""
from __future__ import annotations

import triton
import triton.language as tl

from fpq.kernels.fake_quant import exact_cast
from fpq.kernels.tuning import current

MOMENTS = 5  # S1, S2, T1, T2, X


def blocks(channels: int, hw: int) -> tuple[int, int]:
    """Tile sizes: up to 32 channels by up to 64 spatial positions by default (`fpq.kernels.tuning`:
    csd_block_c, csd_block_hw), no wider than the map."""
    params = current()
    return (min(params["csd_block_c"], triton.next_power_of_2(channels)),
            min(params["csd_block_hw"], triton.next_power_of_2(hw)))


@triton.jit
def _tile(ptr, n, c, hw, sn, sc, shw, C, HW):
    """A [BLOCK_HW, BLOCK_C] tile of sample n (fp32), its mask and its offsets."""
    mask = (hw[:, None] < HW) & (c[None, :] < C)
    offsets = n.to(tl.int64) * sn + c[None, :].to(tl.int64) * sc + hw[:, None].to(tl.int64) * shw
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32), mask, offsets


@triton.jit
def csd_moments_kernel(zs_ptr, zt_ptr, out_ptr, plane, C, HW, s_sn, s_sc, s_shw, t_sn, t_sc, t_shw,
                       SAMPLE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr):
    n = tl.program_id(0)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    kn = n if SAMPLE else n * 0  # the shift: this group's first element (sample) or the batch's first
    ks = tl.load(zs_ptr + kn.to(tl.int64) * s_sn + c.to(tl.int64) * s_sc, mask=cmask, other=0.0).to(tl.float32)
    kt = tl.load(zt_ptr + kn.to(tl.int64) * t_sn + c.to(tl.int64) * t_sc, mask=cmask, other=0.0).to(tl.float32)
    s1 = tl.zeros([BLOCK_C], dtype=tl.float32)
    s2 = tl.zeros([BLOCK_C], dtype=tl.float32)
    t1 = tl.zeros([BLOCK_C], dtype=tl.float32)
    t2 = tl.zeros([BLOCK_C], dtype=tl.float32)
    x = tl.zeros([BLOCK_C], dtype=tl.float32)
    for start in range(0, HW, BLOCK_HW):
        hw = start + tl.arange(0, BLOCK_HW)
        zs, mask, _ = _tile(zs_ptr, n, c, hw, s_sn, s_sc, s_shw, C, HW)
        zt, _, _ = _tile(zt_ptr, n, c, hw, t_sn, t_sc, t_shw, C, HW)
        ds = tl.where(mask, zs - ks[None, :], 0.0)
        dt = tl.where(mask, zt - kt[None, :], 0.0)
        s1 += tl.sum(ds, axis=0)
        s2 += tl.sum(ds * ds, axis=0)
        t1 += tl.sum(dt, axis=0)
        t2 += tl.sum(dt * dt, axis=0)
        x += tl.sum(ds * dt, axis=0)
    group = n.to(tl.int64) * C + c
    # out is [MOMENTS, N, C]; plane = N * C
    tl.store(out_ptr + group, s1, mask=cmask)
    tl.store(out_ptr + plane + group, s2, mask=cmask)
    tl.store(out_ptr + 2 * plane + group, t1, mask=cmask)
    tl.store(out_ptr + 3 * plane + group, t2, mask=cmask)
    tl.store(out_ptr + 4 * plane + group, x, mask=cmask)


@triton.jit
def csd_grad_kernel(zs_ptr, zt_ptr, dz_ptr, coef_ptr, C, HW, s_sn, s_sc, s_shw, t_sn, t_sc, t_shw, coef_sn,
                    coef_plane, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr):
    """dz = alpha zs + beta zt + gamma; coef is [3, groups, C] with groups N (sample) or 1 (batch:
    coef_sn = 0); dz has zs's strides."""
    n = tl.program_id(0)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    hw = tl.program_id(2) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    cmask = c < C
    at = n.to(tl.int64) * coef_sn + c
    alpha = tl.load(coef_ptr + at, mask=cmask, other=0.0)
    beta = tl.load(coef_ptr + coef_plane + at, mask=cmask, other=0.0)
    gamma = tl.load(coef_ptr + 2 * coef_plane + at, mask=cmask, other=0.0)
    zs, mask, offsets = _tile(zs_ptr, n, c, hw, s_sn, s_sc, s_shw, C, HW)
    zt, _, _ = _tile(zt_ptr, n, c, hw, t_sn, t_sc, t_shw, C, HW)
    dz = alpha[None, :] * zs + beta[None, :] * zt + gamma[None, :]
    tl.store(dz_ptr + offsets, exact_cast(dz, dz_ptr), mask=mask)  # dz has zs's strides
