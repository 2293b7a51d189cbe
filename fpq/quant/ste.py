"""Named numeric parts of a fake quantizer: straight-through rounding, gradient scaling, bit ranges.

All parts are plain autograd expressions, so second derivatives (Hessian-vector products) pass.
"""
from __future__ import annotations

import torch


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity gradient (straight-through estimator).

    >>> round_ste(torch.tensor([0.4, 0.6, 2.5])).tolist()
    [0.0, 1.0, 2.0]
    """
    return x + (torch.round(x) - x).detach()


def scale_grad(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value of x, gradient multiplied by g (LSQ's step-size gradient scale)."""
    y = x * g
    return (x - y).detach() + y


def int_range(bits: int) -> tuple[int, int]:
    """The unsigned integer grid of the affine quantizer: [0, 2^b - 1].

    >>> int_range(2), int_range(4), int_range(8)
    ((0, 3), (0, 15), (0, 255))
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    return 0, 2 ** bits - 1
