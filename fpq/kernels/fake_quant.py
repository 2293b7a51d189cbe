"""LSQ / LSQ+ fake quantization in one pass forward and one pass backward (Triton).

The tensor is read as `channels` rows of `per_channel` elements in memory order: one row for a
per-tensor (activation) quantizer, one row per output channel for a weight quantizer. That holds
for NCHW and channels_last alike (dim 0 is outermost in both), so no layout copy is made. A
program takes a [ROWS, BLOCK_SIZE] tile of it (`tiles`).

Forward, per element, in fp32 (the formula of `fpq.quant.functional.fake_quant_reference`):
    v = x / s (IEEE division, as torch's),  q = clip(round(v) + z)  or, LSQ+,  clip(round(v + z)),
    out = (q - z) * s, stored in x's dtype.
`round` is round half to even, as torch.round (Triton's interpreter has no libdevice `rint`, so
it is the exact fp32 trick: |v| + 2^23 - 2^23 rounds to an integer in round-to-nearest-even).
SFP (Eq. 14) is drawn inside: with `NOISE` 1 the noise U[-s/2, s/2] is added to the output
(placement "after"), with 2 to the input (placement "before"), times the layer's gate (a device
scalar 0/1). The noise is Philox `tl.rand(seed, element offset)`: the backward regenerates the
same noise from the same seed instead of storing it.

Backward, per element: grad_x = grad inside LSQ's region (0 < v + z < qmax, the unrounded value),
0 outside; and, per block of a row, the partial sums of grad * d out/d s (q - z - v inside, i.e.
round(v) - v for LSQ and round(u) - u for LSQ+; q - z outside) and of grad outside (the learned
offset's gradient is -s times it), stored per block and summed by torch afterwards: no float
atomics, so a rerun is bit-identical.
"""
from __future__ import annotations

import triton
import triton.language as tl

from fpq.kernels.tuning import current

TILE = 4096  # elements per program by default (fpq.kernels.tuning.DEFAULT's fq_tile)


@triton.jit
def round_half_even(v):
    """torch.round in fp32: adding 2^23 leaves no fraction bit, and IEEE addition rounds to even (at
    or above 2^23 every fp32 is an integer already)."""
    a = tl.abs(v)
    r = tl.where(a < 8388608.0, (a + 8388608.0) - 8388608.0, a)
    return tl.where(v < 0, -r, r)


@triton.jit
def exact_cast(value, ptr):
    """fp32 `value` in the dtype `ptr` points to, rounded to nearest even as torch's `.to()`.

    For bf16 the rounding is done here on the bits (add 0x7FFF plus the kept lowest bit, clear the
    low half), so the conversion after it is exact: Triton's interpreter rounds half up."""
    if ptr.dtype.element_ty == tl.bfloat16:
        bits = value.to(tl.uint32, bitcast=True)
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000
        value = bits.to(tl.float32, bitcast=True)
    return value.to(ptr.dtype.element_ty)


@triton.jit
def _levels(v, z, qmax, SHIFT: tl.constexpr):
    if SHIFT:  # LSQ+: the (fractional) offset before rounding
        q = round_half_even(v + z)
    else:  # LSQ: round, then the integer offset
        q = round_half_even(v) + z
    return tl.minimum(tl.maximum(q, 0.0), qmax)


@triton.jit
def _load_tile(x_ptr, step_ptr, offset_ptr, gate_ptr, seed_ptr, channels, per_channel,
               NOISE: tl.constexpr, ROWS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    """This program's [ROWS, BLOCK_SIZE] tile (fp32): rows are channels (one for a per-tensor
    quantizer), columns elements of a row; its flat offsets, mask, s and z per row, the noise."""
    rows = tl.program_id(1) * ROWS + tl.arange(0, ROWS)
    idx = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    row_mask = rows < channels
    mask = row_mask[:, None] & (idx[None, :] < per_channel)
    offsets = rows[:, None].to(tl.int64) * per_channel + idx[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    s = tl.load(step_ptr + rows, mask=row_mask, other=1.0).to(tl.float32)[:, None]
    z = tl.load(offset_ptr + rows, mask=row_mask, other=0.0).to(tl.float32)[:, None]
    noise = tl.zeros_like(x)
    if NOISE != 0:
        gate = tl.load(gate_ptr).to(tl.float32)
        seed = tl.load(seed_ptr)
        noise = (tl.rand(seed, offsets.to(tl.int32)) - 0.5) * s * gate
    if NOISE == 2:  # SFP before the quantizer: it quantizes the perturbed input
        x = x + noise
    return x, offsets, mask, row_mask, rows, s, z, noise


@triton.jit
def fake_quant_fwd_kernel(x_ptr, out_ptr, step_ptr, offset_ptr, gate_ptr, seed_ptr, channels, per_channel, qmax,
                          SHIFT: tl.constexpr, NOISE: tl.constexpr, ROWS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    x, offsets, mask, _, _, s, z, noise = _load_tile(x_ptr, step_ptr, offset_ptr, gate_ptr, seed_ptr, channels,
                                                     per_channel, NOISE, ROWS, BLOCK_SIZE)
    out = (_levels(tl.math.div_rn(x, s), z, qmax, SHIFT) - z) * s
    if NOISE == 1:  # SFP after the quantizer
        out = out + noise
    tl.store(out_ptr + offsets, exact_cast(out, out_ptr), mask=mask)


@triton.jit
def fake_quant_bwd_kernel(grad_ptr, x_ptr, grad_x_ptr, step_sum_ptr, offset_sum_ptr, step_ptr, offset_ptr,
                          gate_ptr, seed_ptr, channels, per_channel, qmax, blocks,
                          SHIFT: tl.constexpr, NOISE: tl.constexpr, NEED_STEP: tl.constexpr,
                          NEED_OFFSET: tl.constexpr, ROWS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    x, offsets, mask, row_mask, rows, s, z, _ = _load_tile(x_ptr, step_ptr, offset_ptr, gate_ptr, seed_ptr,
                                                           channels, per_channel, NOISE, ROWS, BLOCK_SIZE)
    grad = tl.load(grad_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    v = tl.math.div_rn(x, s)
    u = v + z
    inside = (u > 0.0) & (u < qmax)
    tl.store(grad_x_ptr + offsets, exact_cast(tl.where(inside, grad, 0.0), grad_x_ptr), mask=mask)
    parts = rows.to(tl.int64) * blocks + tl.program_id(0)  # [channels, blocks] partial sums
    if NEED_STEP:  # d out / d s: q - z - v inside (round(u) - u), q - z outside
        q = _levels(v, z, qmax, SHIFT)
        ds = tl.where(inside, q - z - v, q - z)
        tl.store(step_sum_ptr + parts, tl.sum(grad * ds, axis=1), mask=row_mask)
    if NEED_OFFSET:  # d out / d z: 0 inside, -s outside (the -s is applied with the sum)
        tl.store(offset_sum_ptr + parts, tl.sum(tl.where(inside, 0.0, grad), axis=1), mask=row_mask)


def tiles(per_channel: int, channels: int) -> tuple[int, int]:
    """(ROWS, BLOCK_SIZE): up to `fpq.kernels.tuning`'s fq_tile elements a program, whole rows of
    short channels together (a depthwise conv's 9 weights per channel would otherwise be one tiny
    program each)."""
    tile = current()["fq_tile"]
    block = min(tile, triton.next_power_of_2(per_channel))
    return min(triton.next_power_of_2(channels), max(1, tile // block)), block


def grid(per_channel: int, channels: int) -> tuple[int, int]:
    rows, block = tiles(per_channel, channels)
    return triton.cdiv(per_channel, block), triton.cdiv(channels, rows)
