import pytest
import torch
from torch import nn

from fpq.models import MODELS, create_model
from fpq.quant import QUANTIZERS, LsqQuantizer, QuantConv2d, QuantLinear, calibrate, prepare_qat


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("method", sorted(QUANTIZERS))
def test_every_conv_and_linear_is_replaced_first_and_last_at_8_bit(name, method):
    torch.manual_seed(0)
    model = create_model(name, 10)
    originals = {n: m.weight.detach().clone() for n, m in model.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear))}
    report = prepare_qat(model, 2, 4, method)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert [r.name for r in report] == list(originals) == list(layers)
    assert all(isinstance(m, (QuantConv2d, QuantLinear)) for m in layers.values())
    first, last = report[0], report[-1]
    assert first.name == "conv1" and (first.w_bits, first.a_bits) == (8, 8)
    assert last.name == "fc" and last.kind == "QuantLinear" and (last.w_bits, last.a_bits) == (8, 8)
    assert all((r.w_bits, r.a_bits) == (2, 4) for r in report[1:-1])
    for n, w in originals.items():
        assert torch.equal(layers[n].weight, w)
    assert model.conv_layers()[0] is layers["conv1"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_32_bit_is_the_float_model(name):
    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    prepare_qat(model, 32, 32, "lsq")
    assert isinstance(model.conv1, QuantConv2d)
    assert torch.equal(model(x), expected)


@pytest.mark.parametrize("training", [True, False])
def test_mode_is_kept(training):
    model = create_model("resnet20", 10).train(training)
    prepare_qat(model, 4, 4)
    assert all(m.training == training for m in model.modules())


def test_calibration_sets_step_from_min_max_and_leaves_bn_alone():
    torch.manual_seed(0)
    model = create_model("resnet20", 10).train()
    prepare_qat(model, 4, 4)
    bn_before = model.bn1.running_mean.clone()
    images = torch.randn(100, 3, 32, 32)
    assert calibrate(model, images) == 2 * len(model.conv_layers()) + 2
    assert model.training and torch.equal(model.bn1.running_mean, bn_before)
    q = model.conv1.a_quant  # first layer's input is the image batch itself
    assert isinstance(q, LsqQuantizer)
    assert q.step.item() == pytest.approx(((images.max() - images.min()) / 255).item(), rel=1e-6)
    w = model.conv1.w_quant
    per_channel = model.conv1.weight.detach().flatten(1)
    expected = (per_channel.amax(1) - per_channel.amin(1)) / 255
    assert torch.allclose(w.step.flatten(), expected)
    out = model(images[:4])
    assert torch.isfinite(out).all()
