"""fpq.kernels' fake quantizer against the torch formulas, in Triton's interpreter on CPU tensors.

Values bit for bit (fp32 and bf16, NCHW and channels_last, per tensor and per channel, sizes that
are not a multiple of the tile); gradients of x, step and offset within 1e-6 of the sum's scale
(the kernels sum in another order, nothing else); a rerun bit-identical (no float atomics).
"""
from __future__ import annotations

import pytest

from tests.kernels import NO_TRITON

if NO_TRITON:  # the kernels need Triton; the torch path they are checked against is tested elsewhere
    pytest.skip(NO_TRITON, allow_module_level=True)

import torch

from fpq.kernels import fake_quant as fq_k
from fpq.kernels.ops import fake_quant
from fpq.quant.functional import fake_quant_fused, fake_quant_reference

QMAX = 3  # 2 bits: the paper's lowest and the grid where clipping matters most


def case(shape, per_channel: bool, shift: bool, dtype, channels_last: bool = False, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 2).to(dtype)
    # values exactly on half levels, where round-half-to-even decides (x/s = k + 0.5 with s = 0.5)
    x.view(-1)[:6] = torch.tensor([0.25, 0.75, 1.25, -0.25, -0.75, 1.75]).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    pshape = (shape[0],) + (1,) * (len(shape) - 1) if per_channel else ()
    step = torch.rand(pshape, generator=gen) * 0.4 + 0.2
    step.view(-1)[0] = 0.5
    offset = torch.randint(0, 3, pshape, generator=gen).float()
    if shift:
        offset = offset + torch.rand(pshape, generator=gen)
        offset.view(-1)[0] = 0.0
    grad = torch.randn(shape, generator=gen).to(dtype)
    return x, step.requires_grad_(), offset.requires_grad_(shift), grad


SHAPES = [((2, 3, 5, 7), False), ((3, 4, 37, 41), False), ((5, 3, 3, 3), True), ((64, 9, 1, 1), True),
          ((7, 1500), True), ((2, 16, 9, 9), True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape,per_channel", SHAPES)
@pytest.mark.parametrize("shift", [False, True], ids=["lsq", "lsq+"])
def test_values_equal_the_formula_bit_for_bit(shape, per_channel, shift, dtype):
    layouts = [False, True] if len(shape) == 4 else [False]
    for channels_last in layouts:
        x, step, offset, _ = case(shape, per_channel, shift, dtype, channels_last)
        got = fake_quant(x, step, offset, QMAX, 0.1, shift)
        want = fake_quant_reference(x, step, offset, QMAX, 0.1, shift)
        assert got.dtype == x.dtype and got.stride() == x.stride()
        assert torch.equal(got, want), f"{(got != want).sum()} values differ (channels_last={channels_last})"


def test_a_tensor_larger_than_one_tile_is_cut_into_tiles_and_rows():
    """Per tensor, 3*4*37*41 = 18,204 elements: 5 tiles of 4,096, the last one partial."""
    assert fq_k.grid(3 * 4 * 37 * 41, 1) == (5, 1)
    assert fq_k.tiles(9, 64) == (64, 16)  # a depthwise conv's 9 weights a channel: 64 rows in one tile
    assert fq_k.grid(1500, 7) == (1, 4)   # 2,048-wide rows, two a tile


def _grads(fn, x, step, offset, grad, shift):
    x = x.detach().clone().requires_grad_()
    out = fn(x, step, offset, QMAX, 0.05, shift)
    params = [x, step, offset] if shift else [x, step]
    return out, torch.autograd.grad(out, params, grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape,per_channel", SHAPES)
@pytest.mark.parametrize("shift", [False, True], ids=["lsq", "lsq+"])
def test_gradients_equal_the_formula_up_to_summation_order(shape, per_channel, shift, dtype):
    x, step, offset, grad = case(shape, per_channel, shift, dtype, channels_last=len(shape) == 4, seed=1)
    _, got = _grads(fake_quant, x, step, offset, grad, shift)
    _, want = _grads(fake_quant_reference, x, step, offset, grad, shift)
    # grad_x: the incoming gradient, masked (the reference's chain multiplies by s and divides by it again)
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=0)
    # step and offset: sums over a row; within 1e-6 of the sum of |terms| (the order of a sum is all that differs)
    for g, w, s in zip(got[1:], want[1:], term_scales(x, step, offset, grad, per_channel, shift)):
        assert g.shape == w.shape
        assert ((g - w).abs() <= 1e-6 * s).all(), f"{(g - w).abs().max()} against a scale of {s.max()}"


def term_scales(x, step, offset, grad, per_channel, shift):
    """Per row, the sums of |grad * d out/d s| and |grad * d out/d z| times LSQ's scale (0.05): what a
    sum in another order can be off by, in units of its float epsilon."""
    s, z = step.detach(), offset.detach()
    v = x.float() / s
    inside = ((v + z) > 0) & ((v + z) < QMAX)
    q = (torch.round(v + z) if shift else torch.round(v) + z).clamp(0, QMAX)
    ds = torch.where(inside, q - z - v, q - z)
    dims = tuple(range(1, x.dim())) if per_channel else tuple(range(x.dim()))
    terms = [(grad.float() * ds).abs(), (grad.float() * ~inside * s).abs()]
    return [t.sum(dims).reshape(s.shape) * 0.05 + 1e-12 for t in terms]


def test_the_gradients_follow_the_fused_torch_path_too():
    """The training runs' torch path is `fake_quant_fused`: the kernels match it as they match the reference."""
    x, step, offset, grad = case((4, 8, 6, 6), False, True, torch.float32, seed=2)
    out_k, got = _grads(fake_quant, x, step, offset, grad, True)
    out_f, want = _grads(fake_quant_fused, x, step, offset, grad, True)
    assert torch.equal(out_k, out_f) and torch.equal(got[0], want[0])  # grad_x: both mask the gradient
    for g, w in zip(got[1:], want[1:]):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_a_rerun_is_bit_identical():
    x, step, offset, grad = case((4, 8, 33, 33), False, True, torch.float32, seed=3)
    first = _grads(fake_quant, x, step, offset, grad, True)
    second = _grads(fake_quant, x, step, offset, grad, True)
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))


def test_an_incoming_gradient_in_another_layout_is_read_element_by_element():
    x, step, offset, grad = case((2, 6, 5, 5), False, False, torch.float32, channels_last=True, seed=4)
    assert not grad.is_contiguous(memory_format=torch.channels_last)
    _, got = _grads(fake_quant, x, step, offset, grad, False)
    _, want = _grads(fake_quant_fused, x, step, offset, grad, False)
    assert torch.equal(got[0], want[0])


def test_the_kernels_are_custom_ops_that_pass_torchs_registration_checks():
    """Registered as torch.ops.fpq.*: fake (meta) kernels for torch.compile, autograd through
    register_autograd (torch.library.opcheck's schema, fake-tensor and autograd checks)."""
    x, step, offset, _ = case((2, 3, 5, 7), False, True, torch.float32)
    args = (x.detach().requires_grad_(), step, offset, None, None, QMAX, True, 0, 0.1)
    torch.library.opcheck(torch.ops.fpq.fake_quant.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    assert hasattr(torch.ops.fpq, "csd_layer") and hasattr(torch.ops.fpq, "fake_quant_backward")
