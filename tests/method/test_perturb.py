import pytest
import torch

from fpq.method.perturb import StochasticFeaturePerturbation, attach_sfp
from fpq.models import create_model
from fpq.quant import LsqQuantizer, QuantConv2d, QuantLinear, calibrate, prepare_qat


def quantizer(step=0.25, bits=4):
    q = LsqQuantizer(bits)
    with torch.no_grad():
        q.step.fill_(step)
        q.offset.fill_(0.0)
    return q


def test_identity_in_eval_mode_and_at_p_zero():
    q, x = quantizer(), torch.rand(4, 3, 5, 5) * 3
    assert torch.equal(StochasticFeaturePerturbation(1.0).eval()(x, q), q(x))
    assert torch.equal(StochasticFeaturePerturbation(0.0).train()(x, q), q(x))


def test_noise_is_bounded_by_half_a_step():
    torch.manual_seed(0)
    q, x = quantizer(0.25), torch.rand(8, 3, 6, 6) * 3
    delta = StochasticFeaturePerturbation(1.0).train()(x, q) - q(x)
    assert delta.abs().max() <= 0.125 + 1e-7
    assert delta.abs().max() > 0.1  # actually spread over the interval
    assert abs(delta.mean().item()) < 0.01  # E[delta] = 0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fraction_of_perturbed_forwards_is_p(p):
    torch.manual_seed(1)
    sfp, q, x = StochasticFeaturePerturbation(p).train(), quantizer(), torch.rand(2, 2, 3, 3)
    base = q(x)
    hits = sum(not torch.equal(sfp(x, q), base) for _ in range(2000))
    assert hits / 2000 == pytest.approx(p, abs=0.04)  # binomial sd <= 0.011


def test_per_sample_gate():
    torch.manual_seed(2)
    sfp, q, x = StochasticFeaturePerturbation(0.5, gate="sample").train(), quantizer(), torch.rand(400, 2, 3, 3)
    changed = (sfp(x, q) != q(x)).flatten(1).any(1)
    assert 0.4 < changed.float().mean().item() < 0.6


def test_before_placement_perturbs_the_quantizer_input():
    torch.manual_seed(3)
    sfp, q = StochasticFeaturePerturbation(1.0, placement="before").train(), quantizer(0.25)
    out = sfp(torch.rand(4, 3, 5, 5) * 3, q)
    grid = out / 0.25
    assert torch.allclose(grid, grid.round(), atol=1e-6)  # still on the quantization grid


def test_same_seed_same_noise():
    q, x = quantizer(), torch.rand(3, 2, 4, 4)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        sfp = StochasticFeaturePerturbation(0.5).train()
        outs.append([sfp(x, q) for _ in range(5)])
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def test_attached_to_every_quantized_conv_not_the_fc():
    model = create_model("resnet20", 10)
    prepare_qat(model, 2, 4)
    calibrate(model, torch.randn(8, 3, 32, 32))
    assert attach_sfp(model, 0.1) == len(model.conv_layers())
    assert all(isinstance(c.perturb, StochasticFeaturePerturbation) for c in model.conv_layers())
    fc = model.classifier()
    assert isinstance(fc, QuantLinear) and fc.perturb is None
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    first = model(x)
    assert torch.equal(first, model(x))  # eval: no noise anywhere
    assert all(isinstance(c, QuantConv2d) and not c.perturb.training for c in model.conv_layers())
