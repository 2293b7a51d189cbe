"""The quantizer formulas of Sec. 3.1, checked with exact values on tiny tensors."""
import copy
import math

import pytest
import torch

from fpq.quant import QUANTIZERS, LsqPlusQuantizer, LsqQuantizer, PactQuantizer, QuantConv2d
from fpq.quant.functional import fake_quant_fused, fake_quant_reference, pact_fused, pact_reference
from fpq.quant.ste import int_range, round_ste, scale_grad


def calibrated(q, *batches):
    q.calibrating = True
    for b in batches:
        q(b)
    q.calibrating = False
    q.init_from_observed()
    return q


def test_round_ste_forward_rounds_backward_is_identity():
    x = torch.tensor([-1.5, -0.4, 0.5, 1.6], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [-2.0, -0.0, 0.0, 2.0]  # round half to even, as torch.round
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_scale_grad_keeps_value_scales_gradient():
    x = torch.tensor([2.0, -3.0], requires_grad=True)
    y = scale_grad(x, 0.25)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert x.grad.tolist() == [0.25, 0.25]


@pytest.mark.parametrize("bits", range(2, 9))
def test_bit_range(bits):
    assert int_range(bits) == (0, 2 ** bits - 1)


def test_calibration_gives_the_formula_s_and_z():
    q = calibrated(LsqQuantizer(2), torch.tensor([-1.0, 0.5]), torch.tensor([2.0, 0.0]))
    s = (2.0 - (-1.0)) / 3
    assert q.step.item() == pytest.approx(s)
    assert q.offset.item() == round(3 - 2.0 / s)  # = round(1.0) = 1


def test_per_channel_weight_calibration():
    w = torch.tensor([[[[-1.0, 1.0]]], [[[0.0, 3.0]]]])  # two output channels
    q = calibrated(LsqQuantizer(2, (2, 1, 1, 1)), w)
    assert q.step.flatten().tolist() == pytest.approx([2 / 3, 1.0])
    assert q.offset.flatten().tolist() == [round(3 - 1 / (2 / 3)), 0.0]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_grid_values_are_fixed_points(bits):
    q = calibrated(LsqQuantizer(bits), torch.linspace(-1.3, 2.1, 50))
    s, z = q.step.detach(), q.offset
    grid = (torch.arange(2 ** bits, dtype=torch.float32) - z) * s
    assert torch.allclose(q(grid), grid, atol=1e-6)
    assert torch.allclose(q(q(grid)), q(grid), atol=1e-6)


@pytest.mark.parametrize("bits", [2, 4])
def test_at_most_2_to_the_b_values_per_channel(bits):
    torch.manual_seed(0)
    w = torch.randn(6, 4, 3, 3)
    q = calibrated(LsqQuantizer(bits, (6, 1, 1, 1)), w)
    out = q(w * 1.5)  # values beyond the calibrated range clamp to the end levels
    for channel in out:
        assert channel.unique().numel() <= 2 ** bits


def test_lsq_step_gradient_hand_worked():
    # s = 0.5, z = 1, 2 bits (levels 0..3). x/s = [-2, -0.4, 0.6, 1.8, 4]
    # round + z = [-1, 1, 2, 3, 5] -> clipped [0, 1, 2, 3, 3] -> x_hat = [-0.5, 0, 0.5, 1, 1]
    # d x_hat/ds: below -> 0 - z = -1; inside -> round(v) - v = 0.4, 0.4, 0.2; above -> 3 - z = 2
    q = LsqQuantizer(2)
    with torch.no_grad():
        q.step.fill_(0.5)
        q.offset.fill_(1.0)
    x = torch.tensor([-1.0, -0.2, 0.3, 0.9, 2.0], requires_grad=True)
    y = q(x)
    assert y.tolist() == pytest.approx([-0.5, 0.0, 0.5, 1.0, 1.0])
    y.sum().backward()
    g = 1 / math.sqrt(5 * 3)  # LSQ gradient scale 1/sqrt(numel * Q_p)
    assert q.step.grad.item() == pytest.approx((-1 + 0.4 + 0.4 + 0.2 + 2) * g, rel=1e-6)
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # straight through inside, zero when clipped


def test_offset_is_fixed_in_lsq_and_learned_in_lsq_plus():
    x = torch.linspace(-2, 2, 20)
    lsq = calibrated(LsqQuantizer(2), x)
    assert "offset" not in dict(lsq.named_parameters()) and not lsq.offset.requires_grad
    (lsq(x * 2) ** 2).sum().backward()
    assert lsq.offset.grad is None and lsq.step.grad is not None
    plus = calibrated(LsqPlusQuantizer(2), x)
    (plus(x * 2) ** 2).sum().backward()
    assert plus.offset.grad is not None and plus.offset.grad.abs().item() > 0


def test_lsq_plus_equals_lsq_while_offset_is_an_integer():
    x = torch.linspace(-2, 2, 41)
    a, b = calibrated(LsqQuantizer(3), x), calibrated(LsqPlusQuantizer(3), x)
    assert torch.equal(a(x * 1.3), b(x * 1.3))


def test_pact_clips_at_alpha_and_alpha_learns_from_clipped_inputs():
    q = calibrated(PactQuantizer(2), torch.tensor([0.0, 3.0]))
    assert q.alpha.item() == 3.0 and not q.signed.item()
    x = torch.tensor([-1.0, 0.4, 1.2, 5.0])
    y = q(x)
    assert y.tolist() == pytest.approx([0.0, 0.0, 1.0, 3.0])  # grid 0, 1, 2, 3
    y.sum().backward()
    assert q.alpha.grad.item() == 1.0  # one input above alpha


def test_pact_signed_inputs_get_a_symmetric_clip():
    q = calibrated(PactQuantizer(2), torch.tensor([-2.0, 1.0]))
    assert q.signed.item() and q.alpha.item() == 2.0
    assert q(torch.tensor([-5.0, 5.0])).tolist() == [-2.0, 2.0]


def _fake_quant_inputs(dtype=torch.float64, learn_offset=False, fractional=False):
    torch.manual_seed(1)
    x = (torch.randn(3, 5, dtype=dtype) * 2).requires_grad_(True)
    step = torch.tensor([[0.5], [0.3], [0.9]], dtype=dtype, requires_grad=True)
    offset = torch.tensor([[2.0], [1.0], [0.0]], dtype=dtype)
    if fractional:
        offset = offset + torch.tensor([[0.3], [-0.4], [0.1]], dtype=dtype)
    return x, step, offset.requires_grad_(learn_offset)


@pytest.mark.parametrize("shift_before_round,learn_offset", [(False, False), (True, True), (True, False)])
def test_fused_equals_reference_values_gradients_and_second_derivative(shift_before_round, learn_offset):
    """LSQ (fixed integer z) and LSQ+ (learned fractional z): value, first and second derivatives."""
    results = []
    for fn in (fake_quant_reference, fake_quant_fused):
        x, step, offset = _fake_quant_inputs(learn_offset=learn_offset, fractional=shift_before_round)
        inputs = (x, step, offset) if learn_offset else (x, step)
        y = fn(x, step, offset, 3, 0.2, shift_before_round)
        loss = (y ** 2 * torch.arange(5, dtype=y.dtype)).sum()
        first = torch.autograd.grad(loss, inputs, create_graph=True)
        u = torch.linspace(-1, 1, 3, dtype=y.dtype).view(3, 1)
        mixed = sum((g * u * (k + 1)).sum() for k, g in enumerate(first[1:])) + first[0].sum()
        second = torch.autograd.grad(mixed, inputs)
        results.append([t.detach() for t in (y, *first, *second)])
    ref, fused = results
    assert torch.equal(ref[0], fused[0])
    assert any(t.abs().sum() > 0 for t in ref[len(ref) // 2 + 1:])  # the second derivatives are not all 0
    for a, b in zip(ref[1:], fused[1:]):
        assert torch.allclose(a, b, atol=1e-12)


def test_fused_offset_gradient_is_minus_step_outside_the_range():
    x = torch.tensor([-5.0, 0.1, 0.9, 9.0], dtype=torch.float64, requires_grad=True)
    step = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    offset = torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
    fake_quant_fused(x, step, offset, 3, 1.0, True).sum().backward()
    assert offset.grad.item() == pytest.approx(-2 * 0.5)  # two inputs clipped, d x_hat/d z = -s each
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def _pact_inputs(signed: bool):
    x = torch.tensor([-3.0, -2.0, -0.5, 0.0, 0.7, 1.3, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)  # ties at +-alpha and 0 included
    return x, alpha, torch.tensor(signed)


@pytest.mark.parametrize("signed", [False, True])
def test_pact_fused_equals_reference(signed):
    results = []
    for fn in (pact_reference, pact_fused):
        x, alpha, flag = _pact_inputs(signed)
        y = fn(x, alpha, flag, 3)
        gx, ga = torch.autograd.grad((y * torch.arange(1.0, 9.0, dtype=y.dtype)).sum(), (x, alpha))
        results.append((y.detach(), gx, ga))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_pact_gradient_rule():
    """d/dx = 1 on [lower, alpha); d/dalpha = +1 per input >= alpha, -1 per input < -alpha if signed."""
    x, alpha, _ = _pact_inputs(True)
    pact_fused(x, alpha, torch.tensor(True), 3).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert alpha.grad.item() == 2.0 - 1.0
    x, alpha, _ = _pact_inputs(False)
    pact_fused(x, alpha, torch.tensor(False), 3).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert alpha.grad.item() == 2.0


@pytest.mark.parametrize("method", ["lsq", "lsq+", "pact"])
def test_every_quantizer_family_fused_matches_unfused_on_a_conv(method):
    """The runtime key `fused_quant` changes kernels, not numbers: same output and gradients."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    outs = []
    for fused in (False, True):
        family = QUANTIZERS[method]
        layer = QuantConv2d.from_float(copy.deepcopy(conv), family.weight(bits=2, shape=(4, 1, 1, 1), fused=fused).double(),
                                       family.activation(bits=4, fused=fused)).double()
        calibrated(layer.w_quant, layer.weight)
        calibrated(layer.a_quant, x)
        with torch.no_grad():  # move the grid off its calibration point (fractional LSQ+ offset)
            for p in layer.a_quant.parameters():
                p.mul_(0.8)
        y = layer(x)
        (y ** 2).sum().backward()
        outs.append([y.detach()] + [p.grad for p in layer.parameters()])
    assert len(outs[0]) >= 3
    for a, b in zip(*outs):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True])
def test_second_derivative_through_quantized_conv_matches_finite_differences(fused):
    """Hv of the STE loss w.r.t. the latent weight equals a central difference over one grid step.

    Moving in-range weights by exactly one step s moves the fake-quantized weight by exactly s,
    and the loss is quadratic in it, so (g(w + s*u) - g(w - s*u)) / 2 = H (s*u) holds exactly.
    """
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False).double()
    layer = QuantConv2d.from_float(conv, LsqQuantizer(4, (3, 1, 1, 1), fused).double(),
                                   LsqQuantizer(4, (), fused).double())
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    calibrated(layer.w_quant, layer.weight)
    calibrated(layer.a_quant, x)

    def grad(weight_value, create_graph=False):
        with torch.no_grad():
            layer.weight.copy_(weight_value)
        loss = 0.5 * (layer(x) ** 2).sum()
        return torch.autograd.grad(loss, layer.weight, create_graph=create_graph)[0]

    w0 = layer.weight.detach().clone()
    s, z = layer.w_quant.step.detach(), layer.w_quant.offset
    level = torch.round(w0 / s) + z
    interior = (level >= 1) & (level <= 14)  # one step either way stays on the grid
    u = torch.randint(-1, 2, w0.shape, generator=torch.Generator().manual_seed(3)).double() * interior
    v = u * s
    g = grad(w0, create_graph=True)
    hv = torch.autograd.grad((g * v).sum(), layer.weight)[0]
    fd = (grad(w0 + v) - grad(w0 - v)) / 2
    assert torch.isfinite(hv).all() and hv.abs().max() > 0
    assert torch.allclose(hv, fd, atol=1e-9)
