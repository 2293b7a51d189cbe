"""fpq.kernels' CSD against `csd_loss_reference` (instance_norm / batch_norm + MSE), in Triton's
interpreter: value and gradient within 1e-5, per-sample and batch statistics, NCHW, channels_last
and mixed layouts, fp32 and bf16 maps, sizes that fill no tile exactly."""
from __future__ import annotations

import pytest

from tests.kernels import NO_TRITON

if NO_TRITON:  # the kernels need Triton; the torch path they are checked against is tested elsewhere
    pytest.skip(NO_TRITON, allow_module_level=True)

import torch

from fpq.kernels.ops import csd_layer
from fpq.method.distill import csd_loss, csd_loss_reference

SHAPES = [(4, 5, 6, 7), (2, 40, 9, 9), (3, 3, 12, 11), (1, 7, 2, 2)]


def maps(shape, dtype, seed=0, student_layout=None, teacher_layout=None):
    gen = torch.Generator().manual_seed(seed)
    zs = (torch.randn(shape, generator=gen) * 1.5 + 0.7).to(dtype)
    zt = (torch.randn(shape, generator=gen) * 3 - 2 + 0.5 * zs.float()).to(dtype)  # correlated with zs
    if student_layout:
        zs = zs.to(memory_format=student_layout)
    if teacher_layout:
        zt = zt.to(memory_format=teacher_layout)
    return zs.requires_grad_(), zt


@pytest.mark.parametrize("stats", ["sample", "batch"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layouts", [(None, None), (torch.channels_last, torch.channels_last),
                                     (torch.channels_last, None)], ids=["nchw", "nhwc", "mixed"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_value_and_gradient_equal_the_reference(stats, shape, layouts, dtype):
    if stats == "sample" and shape[2] * shape[3] == 1:
        pytest.skip("a 1x1 map has no per-sample spread")
    zs, zt = maps(shape, dtype, 1, *layouts)
    got = csd_layer(zs, zt, stats)
    want = csd_loss_reference([zs], [zt], stats)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    (g_got,), (g_want,) = torch.autograd.grad(got, [zs]), torch.autograd.grad(want, [zs])
    assert g_got.dtype == zs.dtype and g_got.stride() == zs.stride()
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # a bf16 gradient is stored with 8 significant bits
    torch.testing.assert_close(g_got.float(), g_want.float(), rtol=tol, atol=tol * float(g_want.float().abs().max()))


def test_the_loss_over_layers_sums_the_kernels_layers():
    pairs = [maps(s, torch.float32, i) for i, s in enumerate(SHAPES[:3])]
    student, teacher = [p[0] for p in pairs], [p[1] for p in pairs]
    got = csd_loss(student, teacher, "sample", kernels="triton")
    want = csd_loss_reference(student, teacher, "sample")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    g_got = torch.autograd.grad(got, student)
    g_want = torch.autograd.grad(want, student)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce", ["mean", "elements"])
def test_every_reading_of_the_combination_runs_on_the_kernels(reduce):
    pairs = [maps(s, torch.float32, i) for i, s in enumerate(SHAPES[:3])]
    student, teacher = [p[0] for p in pairs], [p[1] for p in pairs]
    got = csd_loss(student, teacher, "sample", kernels="triton", reduce=reduce)
    want = csd_loss(student, teacher, "sample", reduce=reduce)  # the torch path, against a hand computation
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_student_equal_to_its_teacher_has_zero_loss_and_zero_gradient():
    zs, _ = maps((2, 6, 8, 8), torch.float32, 3)
    zt = zs.detach() * 2.5 + 1.0  # the same map up to each channel's scale and shift
    loss = csd_layer(zs, zt, "sample", eps=1e-12)
    assert abs(float(loss.detach())) < 1e-5
    (grad,) = torch.autograd.grad(loss, [zs])
    assert float(grad.abs().max()) < 1e-6


def test_the_teacher_gets_no_gradient():
    zs, zt = maps((2, 4, 5, 5), torch.float32, 4)
    zt.requires_grad_()
    loss = csd_layer(zs, zt)
    grads = torch.autograd.grad(loss, [zs, zt], allow_unused=True)
    assert grads[0] is not None and grads[1] is None
