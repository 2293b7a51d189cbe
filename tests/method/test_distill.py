import copy

import pytest
import torch

from fpq.method.distill import csd_loss, csd_loss_reference, kd_loss, standardize
from fpq.models import FeatureTaps, create_model
from fpq.quant import prepare_qat


def conv_outputs(model, x):
    taps = FeatureTaps(model)
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
    assert csd_loss_reference(conv_outputs(student, x), conv_outputs(teacher, x)).item() == 0.0
    # the fast form subtracts with a fused multiply-add: zero up to one rounding of a unit-scale value
    assert csd_loss(conv_outputs(student, x), conv_outputs(teacher, x)).item() == pytest.approx(0.0, abs=1e-12)


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


SHAPES = [[(4, 6, 8, 8)], [(3, 5, 4, 4), (3, 7, 2, 2)], [(2, 16, 16, 16), (2, 4, 8, 8), (2, 8, 4, 4)]]


def _maps(shapes, channels_last, dtype=torch.float32, seed=0):
    """Student and teacher maps with a mean and scale per channel, as pre-BN conv outputs have."""
    gen = torch.Generator().manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def one(shape):
        z = torch.randn(*shape, generator=gen) * (torch.rand(1, shape[1], 1, 1, generator=gen) * 3 + 0.2)
        return (z + torch.randn(1, shape[1], 1, 1, generator=gen) * 2).to(dtype).contiguous(memory_format=fmt)

    return [one(s) for s in shapes], [one(s) for s in shapes]


def _value_and_grads(fn, zs, zt, stats, eps, weight=1.7):
    zs = [z.detach().clone().requires_grad_(True) for z in zs]
    loss = fn(zs, zt, stats, eps)
    grads = torch.autograd.grad(loss * weight, zs)  # a weight != 1: the incoming gradient is used
    return loss, grads


@pytest.mark.parametrize("stats", ["sample", "batch"])
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_the_fast_csd_equals_the_reference_in_value_and_gradient(stats, shapes, channels_last, eps):
    zs, zt = _maps(shapes, channels_last)
    fast, fast_grads = _value_and_grads(csd_loss, zs, zt, stats, eps)
    ref, ref_grads = _value_and_grads(csd_loss_reference, zs, zt, stats, eps)
    assert ref.item() > 0.1  # a real difference to match, not two zeros
    assert fast.item() == pytest.approx(ref.item(), rel=1e-5)
    for g, r, z in zip(fast_grads, ref_grads, zs):
        assert g.shape == z.shape and g.dtype == z.dtype
        assert g.is_contiguous(memory_format=torch.channels_last) == channels_last  # the map's own layout
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-5 * r.abs().max().item())


@pytest.mark.parametrize("stats", ["sample", "batch"])
def test_the_fast_csd_takes_bf16_maps_and_keeps_fp32_statistics(stats):
    """bf16 maps (the GPU's autocast path): the fast CSD reads them as they are and computes in
    fp32, so it equals the reference on the same bf16 values upcast; its gradient is bf16."""
    zs, zt = _maps(SHAPES[2], channels_last=True, dtype=torch.bfloat16, seed=3)
    fast, fast_grads = _value_and_grads(csd_loss, zs, zt, stats, 1e-5)
    ref, ref_grads = _value_and_grads(csd_loss_reference, [z.float() for z in zs], [z.float() for z in zt],
                                      stats, 1e-5)
    assert fast.dtype == torch.float32
    assert fast.item() == pytest.approx(ref.item(), rel=1e-4)
    for g, r in zip(fast_grads, ref_grads):
        assert g.dtype == torch.bfloat16
        assert torch.allclose(g.float(), r, rtol=2 ** -7, atol=2 ** -7 * r.abs().max().item())


def test_the_fast_csd_of_all_layers_traces_as_one_graph():
    """`runtime.csd_compile` compiles it alone: no graph break, so one small graph for every layer."""
    zs, zt = _maps(SHAPES[1], channels_last=False)
    zs = [z.requires_grad_(True) for z in zs]
    explained = torch._dynamo.explain(csd_loss)(zs, zt, "sample", 1e-5)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
