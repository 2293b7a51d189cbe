import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fpq.measure.hessian import hutchinson_trace, top_eigenvalue, weight_parameters
from fpq.models import create_model
from fpq.quant import calibrate, prepare_qat


def tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    batches = [(torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))) for _ in range(2)]
    return model, batches


def exact_hessian(model, batches, params):
    names = [n for n, p in model.named_parameters() if any(p is q for q in params)]
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().flatten() for p in params])

    def loss(vec):
        chunks, i = {}, 0
        for n, s in zip(names, shapes):
            chunks[n] = vec[i:i + s.numel()].view(s)
            i += s.numel()
        return sum(F.cross_entropy(functional_call(model, chunks, (x,)), y) for x, y in batches) / len(batches)

    return torch.autograd.functional.hessian(loss, flat)


def test_hutchinson_is_within_three_standard_errors_of_the_exact_trace():
    model, batches = tiny_problem()
    params = weight_parameters(model)
    exact = torch.trace(exact_hessian(model, batches, params)).item()
    est = hutchinson_trace(model, batches, params, probes=200, seed=0)
    assert est.probes == 200 and est.stderr > 0
    assert abs(est.mean - exact) <= 3 * est.stderr


def test_power_iteration_finds_the_top_eigenvalue():
    model, batches = tiny_problem()
    params = weight_parameters(model)
    eig = torch.linalg.eigvalsh(exact_hessian(model, batches, params))
    top = eig[eig.abs().argmax()].item()
    assert top_eigenvalue(model, batches, params, iters=500, tol=1e-10) == pytest.approx(top, rel=1e-3)


def test_callers_state_is_left_alone():
    model, batches = tiny_problem()
    model.train()
    model[0].bias.requires_grad_(False)
    model[2].weight.grad = torch.ones_like(model[2].weight)
    hutchinson_trace(model, batches, [model[0].bias, model[2].weight], probes=3)
    top_eigenvalue(model, batches, iters=3)
    assert model.training and all(m.training for m in model)
    assert not model[0].bias.requires_grad
    assert torch.equal(model[2].weight.grad, torch.ones_like(model[2].weight))
    assert model[0].weight.grad is None


def test_default_parameters_are_conv_and_linear_weights_only():
    model = create_model("resnet20", 10)
    prepare_qat(model, 4, 4)
    params = weight_parameters(model)
    assert len(params) == len(model.conv_layers()) + 1
    assert all(p.dim() in (2, 4) for p in params)


def test_works_through_quantized_layers_and_leaves_bn_statistics():
    torch.manual_seed(0)
    model = create_model("resnet20", 10)
    prepare_qat(model, 2, 4)
    calibrate(model, torch.randn(16, 3, 32, 32))
    model.train()
    running = model.bn1.running_mean.clone()
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))]
    est = hutchinson_trace(model, batches, probes=4, seed=1)
    assert torch.isfinite(torch.tensor([est.mean, est.stderr])).all() and est.mean != 0
    assert torch.equal(model.bn1.running_mean, running) and model.training
    again = hutchinson_trace(model, batches, probes=4, seed=1)
    assert again == est  # seeded: same probes, same estimate


@pytest.mark.parametrize("chunk", [2, 3, 8])
def test_batched_probes_give_the_loops_samples(chunk):
    """Probes in vmapped chunks (any chunk size, a last partial chunk included) give the plain
    loop's estimate: same probes, the same samples up to rounding (float64 here: to 1e-10)."""
    model, batches = tiny_problem()
    params = weight_parameters(model)
    loop = hutchinson_trace(model, batches, params, probes=7, seed=3, chunk=1)
    batched = hutchinson_trace(model, batches, params, probes=7, seed=3, chunk=chunk)
    assert batched.mean == pytest.approx(loop.mean, rel=1e-10)
    assert batched.stderr == pytest.approx(loop.stderr, rel=1e-10)


def test_batched_probes_through_quantized_layers_match_the_loop():
    """The fused quantizers' backward is differentiable, and vmap runs through it (fp32: 1e-4)."""
    torch.manual_seed(0)
    model = create_model("resnet20", 10)
    prepare_qat(model, 2, 4, fused=True)
    calibrate(model, torch.randn(16, 3, 32, 32))
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))]
    loop = hutchinson_trace(model, batches, probes=4, seed=1, chunk=1)
    batched = hutchinson_trace(model, batches, probes=4, seed=1, chunk=4)
    assert batched.mean == pytest.approx(loop.mean, rel=1e-4)
    assert batched.stderr == pytest.approx(loop.stderr, rel=1e-3)
