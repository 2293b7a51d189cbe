"""Which implementation a built model's quantizers run: the torch path or the Triton kernels.

`runtime.kernels` is a speed key: both paths compute the same formulas (tests/kernels), so the
choice is made on the built model, never in its config or identity. The Hessian measurement
switches a model to the torch path for its duration (`kernel_path`): the kernels' backward is
an op of its own, with no double backward.
"""
from __future__ import annotations

import contextlib

from torch import nn

from fpq.quant import KERNEL_PATHS
from fpq.quant.quantizers import quantizers_in


def set_kernels(model: nn.Module, kernels: str) -> int:
    """Every quantizer of `model` on `kernels`; returns how many quantizers there are."""
    if kernels not in KERNEL_PATHS:
        raise ValueError(f"kernels must be one of {KERNEL_PATHS}, got {kernels!r}")
    quantizers = quantizers_in(model)
    for q in quantizers:
        q.kernels = kernels
    return len(quantizers)


@contextlib.contextmanager
def kernel_path(model: nn.Module, kernels: str):
    """`model`'s quantizers on `kernels` inside the block, each back on its own path after it."""
    quantizers = quantizers_in(model)
    before = [q.kernels for q in quantizers]
    set_kernels(model, kernels)
    try:
        yield model
    finally:
        for q, k in zip(quantizers, before):
            q.kernels = k
