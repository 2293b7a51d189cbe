import copy

import pytest
import torch

from fpq.method.distill import csd_loss, kd_loss, standardize
from fpq.models import ConvTaps, create_model
from fpq.quant import prepare_qat


def conv_outputs(model, x):
    taps = ConvTaps(model)
    with taps.collect() as feats:
        model(x)
    taps.remove()
    return feats


@pytest.mark.parametrize("stats", ["sample", "batch"])
def test_standardize_is_eq_16(stats):
    z = torch.randn(4, 3, 5, 5) * 3 + 2
    dims = (2, 3) if stats == "sample" else (0, 2, 3)
    expected = (z - z.mean(dims, keepdim=True)) / torch.sqrt(z.var(dims, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(standardize(z, stats, 1e-5), expected, atol=1e-5)


@pytest.mark.parametrize("stats", ["sample", "batch"])
def test_standardize_has_zero_mean_unit_variance(stats):
    z = torch.randn(4, 3, 5, 5) * 3 + 2
    out = standardize(z, stats, eps=1e-12)
    dims = (2, 3) if stats == "sample" else (0, 2, 3)
    assert torch.allclose(out.mean(dims), torch.zeros(()), atol=1e-5)
    assert torch.allclose(out.var(dims, unbiased=False), torch.ones(()), atol=1e-4)


def test_zero_for_a_float_copy_of_the_teacher():
    torch.manual_seed(0)
    teacher = create_model("resnet20", 10).eval()
    student = copy.deepcopy(teacher)
    prepare_qat(student, 32, 32)  # quantization off: same function
    x = torch.randn(4, 3, 32, 32)
    loss = csd_loss(conv_outputs(student, x), conv_outputs(teacher, x))
    assert loss.item() == 0.0


@pytest.mark.parametrize("stats", ["sample", "batch"])
def test_invariant_to_positive_per_channel_affine(stats):
    torch.manual_seed(1)
    s = [torch.randn(4, 6, 8, 8), torch.randn(4, 3, 4, 4)]
    t = [torch.randn(4, 6, 8, 8), torch.randn(4, 3, 4, 4)]
    scale = [torch.rand(1, 6, 1, 1) * 5 + 0.5, torch.rand(1, 3, 1, 1) * 5 + 0.5]
    shift = [torch.randn(1, 6, 1, 1) * 4, torch.randn(1, 3, 1, 1) * 4]
    moved = [a * k + b for a, k, b in zip(s, scale, shift)]
    assert csd_loss(moved, t, stats).item() == pytest.approx(csd_loss(s, t, stats).item(), rel=1e-4)
    assert csd_loss(s, t, stats).item() > 0.5  # not trivially zero


def test_gradients_reach_the_student_only():
    torch.manual_seed(2)
    teacher = create_model("resnet20", 10)
    student = copy.deepcopy(teacher)
    prepare_qat(student, 4, 4)
    for q in [m for m in student.modules() if hasattr(m, "step")]:
        with torch.no_grad():
            q.step.fill_(0.05)
    x = torch.randn(2, 3, 32, 32)
    loss = csd_loss(conv_outputs(student, x), conv_outputs(teacher, x))
    loss.backward()
    assert loss.item() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert student.conv1.weight.grad is not None and student.conv1.weight.grad.abs().sum() > 0


def test_layer_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="pairs layers by position"):
        csd_loss([torch.zeros(1, 1, 2, 2)], [])


def test_kd_loss_is_zero_for_equal_logits_and_positive_otherwise():
    logits = torch.randn(5, 10)
    assert kd_loss(logits, logits, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(logits, torch.randn(5, 10), 4.0).item() > 0
