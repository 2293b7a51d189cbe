"""SFP's noise drawn inside the fake-quant kernel (Eq. 14), in Triton's interpreter on CPU tensors.

After the quantizer: out - Q(x) is the noise, U[-s/2, s/2] (its range, mean and variance); the
same seed gives the same noise, another seed other noise; gate 0 gives none; before the quantizer
the output stays on the grid. Through the module: the gate fires with frequency p per layer.
"""
from __future__ import annotations

import math

import pytest

from tests.kernels import NO_TRITON

if NO_TRITON:  # the kernels need Triton; the torch path they are checked against is tested elsewhere
    pytest.skip(NO_TRITON, allow_module_level=True)

import torch

from fpq.kernels.ops import fake_quant
from fpq.method.perturb import StochasticFeaturePerturbation
from fpq.quant.quantizers import LsqQuantizer

N = 64 * 1024


def quantize(x, step, offset, **noise):
    return fake_quant(x, step, offset, 15, 0.1, False, **noise).float()


def inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(4, 16, 32, 32, generator=gen), torch.tensor(0.3), torch.tensor(7.0)


def draw(seed: int, gate: float = 1.0, placement: str = "after", x=None):
    x0, step, offset = inputs()
    x = x0 if x is None else x
    return quantize(x, step, offset, noise=placement, gate=torch.tensor(gate),
                    seed=torch.tensor(seed, dtype=torch.int32)), quantize(x, step, offset), step


def test_the_noise_after_the_quantizer_is_uniform_on_plus_minus_half_a_step():
    noisy, clean, step = draw(seed=123)
    noise = (noisy - clean) / step  # in units of s: U[-1/2, 1/2]
    assert noise.numel() == N
    assert noise.abs().max() <= 0.5 + 1e-6
    assert noise.min() < -0.49 and noise.max() > 0.49
    se_mean = math.sqrt(1 / 12 / N)
    assert abs(float(noise.mean())) < 5 * se_mean  # mean 0
    assert abs(float(noise.var()) - 1 / 12) < 0.01 * (1 / 12) * 5  # variance s^2/12 (sd of the estimate ~0.35%)
    counts = torch.histc(noise, bins=10, min=-0.5, max=0.5)
    assert (counts - N / 10).abs().max() < 5 * math.sqrt(N / 10)  # flat


def test_the_same_seed_draws_the_same_noise_and_another_seed_other_noise():
    a, _, _ = draw(seed=5)
    b, _, _ = draw(seed=5)
    c, _, _ = draw(seed=6)
    assert torch.equal(a, b)
    assert (a != c).float().mean() > 0.9


def test_a_closed_gate_adds_no_noise():
    noisy, clean, _ = draw(seed=5, gate=0.0)
    assert torch.equal(noisy, clean)


def test_noise_before_the_quantizer_stays_on_the_grid_within_one_level():
    noisy, clean, step = draw(seed=9, placement="before")
    levels = noisy / step + 7.0
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    moved = (noisy - clean).abs() / step
    assert moved.max() <= 1 + 1e-5 and 0.1 < float((moved > 0.5).float().mean()) < 0.9


def test_noise_before_the_quantizer_is_regenerated_in_backward():
    """The backward masks the gradient on the perturbed input, from the same seed (not stored)."""
    x, step, offset = inputs(1)
    x = (x * 4).requires_grad_()
    seed, gate = torch.tensor(3, dtype=torch.int32), torch.tensor(1.0)
    out = fake_quant(x, step, offset, 15, 0.1, False, noise="before", gate=gate, seed=seed)
    (grad,) = torch.autograd.grad(out.sum(), x)
    noise = fake_quant(x.detach(), step, offset, 15, 0.1, False, noise="after", gate=gate, seed=seed) \
        - fake_quant(x.detach(), step, offset, 15, 0.1, False)
    u = (x.detach() + noise) / step + offset
    inside = (u > 0) & (u < 15)
    far = ((u - 0).abs() > 1e-3) & ((u - 15).abs() > 1e-3)  # away from the region's ends, where rounding decides
    assert torch.equal(grad[far], inside[far].float())
    assert 0 < float(inside.float().mean()) < 1


@pytest.mark.parametrize("capturable", [False, True])
def test_the_module_fires_the_kernels_noise_with_frequency_p(capturable):
    torch.manual_seed(0)
    q = LsqQuantizer(4)
    q.step.data.fill_(0.3)
    q.offset.fill_(7.0)
    q.kernels = "triton"
    sfp = StochasticFeaturePerturbation(0.3).train()
    sfp.capturable = capturable
    x = torch.randn(2, 3, 4, 4)
    clean = q(x)
    draws = 400
    fired = sum(not torch.equal(sfp(x, q), clean) for _ in range(draws))
    assert abs(fired / draws - 0.3) < 4 * math.sqrt(0.3 * 0.7 / draws)
    sfp.eval()
    assert torch.equal(sfp(x, q), clean)
