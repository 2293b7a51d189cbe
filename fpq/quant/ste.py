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
    # (x - x.detach()) is exactly 0, so the value is exactly round(x); x + (round(x) - x).detach()
    # would carry a float error and could land just past a clip bound.
    return (x - x.detach()) + torch.round(x).detach()


def scale_grad(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value of x, gradient multiplied by g (LSQ's step-size gradient scale)."""
    y = x * g
    return x.detach() + (y - y.detach())  # value exactly x


def clip_ste(q: torch.Tensor, unrounded: torch.Tensor, qmax: int) -> torch.Tensor:
    """clip(q, 0, qmax) in value; gradient passes where 0 < unrounded < qmax, LSQ's region.

    LSQ (Esser et al., Eq. 3) decides "clipped" on the unrounded v/s: an input that rounds onto
    the end level from inside still gets the straight-through gradient. (torch.clamp's gradient
    is zero at the bound itself, which would wrongly treat every end-level input as clipped.)

    >>> q = torch.tensor([-1.0, 0.0, 3.0, 3.0]); u = torch.tensor([-0.7, 0.2, 2.8, 3.2])
    >>> clip_ste(q, u, 3).tolist()
    [0.0, 0.0, 3.0, 3.0]
    """
    inside = (unrounded > 0) & (unrounded < qmax)
    return torch.where(inside.detach(), q, q.clamp(0, qmax).detach())


def int_range(bits: int) -> tuple[int, int]:
    """The unsigned integer grid of the affine quantizer: [0, 2^b - 1].

    >>> int_range(2), int_range(4), int_range(8)
    ((0, 3), (0, 15), (0, 255))
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    return 0, 2 ** bits - 1
