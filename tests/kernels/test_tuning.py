"""The kernels' launch parameters (fpq.kernels.tuning): validated, read from FPQ_KERNEL_TUNING,
and a speed choice only: another tile or warp count gives the same forward values and the same
gradients up to the order of the sums (in Triton's interpreter)."""
from __future__ import annotations

import pytest

from tests.kernels import NO_TRITON

if NO_TRITON:
    pytest.skip(NO_TRITON, allow_module_level=True)

import torch

from fpq.kernels import csd as csd_k
from fpq.kernels import fake_quant as fq_k
from fpq.kernels import tuning
from fpq.kernels.ops import csd_layer, fake_quant


def test_a_bad_setting_is_refused_naming_it():
    with pytest.raises(ValueError, match="'fq_tiles' is not a launch parameter"):
        tuning.parse("fq_tiles=4096")
    with pytest.raises(ValueError, match=r"fq_tile=3000 is not one of \(1024, 2048, 4096, 8192\)"):
        tuning.parse("fq_tile=3000")
    assert tuning.parse(tuning.spell({**tuning.DEFAULT, "csd_block_hw": 128})) == {**tuning.DEFAULT, "csd_block_hw": 128}


def test_the_environment_sets_the_tiles_the_launches_take(monkeypatch):
    assert fq_k.tiles(1 << 20, 1) == (1, 4096) and csd_k.blocks(256, 1024) == (32, 64)
    monkeypatch.setenv(tuning.ENV, "fq_tile=1024,csd_block_c=16,csd_block_hw=128")
    assert fq_k.tiles(1 << 20, 1) == (1, 1024) and csd_k.blocks(256, 1024) == (16, 128)


def run(x, zs, zt):
    x, zs = x.clone().requires_grad_(), zs.clone().requires_grad_()
    step = torch.tensor(0.3, requires_grad=True)
    offset = torch.tensor(0.2, requires_grad=True)
    y = fake_quant(x, step, offset, 3, 0.01, shift_before_round=True, noise="after", gate=torch.ones(()),
                   seed=torch.tensor(7, dtype=torch.int32))
    loss = csd_layer(zs, zt)
    (y.square().sum() + loss).backward()
    return y.detach(), loss.detach(), x.grad, zs.grad, step.grad, offset.grad


def test_another_tiling_changes_no_value_and_only_the_order_of_the_sums(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 24, 24, generator=gen)
    zs, zt = torch.randn(2, 40, 12, 12, generator=gen), torch.randn(2, 40, 12, 12, generator=gen)
    base = run(x, zs, zt)
    monkeypatch.setenv(tuning.ENV, "fq_tile=1024,fq_warps=8,csd_block_c=16,csd_block_hw=32,csd_warps=2")
    other = run(x, zs, zt)
    assert torch.equal(base[0], other[0]) and torch.equal(base[2], other[2])  # elementwise: bit for bit
    for a, b in zip(base[1:], other[1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
