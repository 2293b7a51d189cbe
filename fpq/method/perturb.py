"""SFP, stochastic feature perturbation (Sec. 3.2, Eqs. 9 and 14).

On the input of every quantized conv (not the FC), during training only:
    x <- x + delta,  delta ~ U[-s/2, s/2] elementwise,  s = the layer's activation step (detached),
applied to each layer independently with probability p. Eq. 14 gates layer by layer so that
E[delta] = 0 holds where the second-order expansion needs it (Prop. 1 argues against noise that
is always on everywhere).
"""
from __future__ import annotations

import torch
from torch import nn

from fpq.quant.layers import QuantConv2d
from fpq.quant.quantizers import Quantizer


class StochasticFeaturePerturbation(nn.Module):
    """Wraps a layer's activation quantizer call: quantize, then perturb (or the reverse)."""

    def __init__(self, p: float, gate: str = "layer", placement: str = "after"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if gate not in ("layer", "sample") or placement not in ("after", "before"):
            raise ValueError(f"bad gate {gate!r} or placement {placement!r}")
        self.p, self.gate, self.placement = p, gate, placement
        # Gate drawn on the device, without a host sync: set by a CUDA-graph step (fpq.run.step),
        # and implied under torch.compile. Same Bernoulli(p) per layer, another generator.
        self.capturable = False
        self.draws = self.fired = 0  # per-layer gates drawn on the CPU generator, and those that fired

    def forward(self, x: torch.Tensor, a_quant: Quantizer) -> torch.Tensor:
        if self._in_kernel(a_quant):
            return self._fused(x, a_quant)
        if self.placement == "before":
            return a_quant(self.perturb(x, a_quant.step_size()))
        return self.perturb(a_quant(x), a_quant.step_size())

    def _in_kernel(self, a_quant: Quantizer) -> bool:
        """The noise is drawn inside the quantizer's Triton kernel (no extra pass over memory):
        LSQ/LSQ+ on the triton path, the per-layer gate, while training."""
        return (self.training and self.p > 0.0 and self.gate == "layer" and not a_quant.calibrating
                and a_quant.kernels == "triton" and hasattr(a_quant, "quantize_perturbed"))

    def _on_device(self) -> bool:
        # Under torch.compile a Python branch on a random value would split the graph at every
        # layer, and a CUDA-graph capture refuses the sync of `.item()`: a tensor gate keeps one graph.
        return self.capturable or torch.compiler.is_compiling()

    def _fused(self, x: torch.Tensor, a_quant: Quantizer) -> torch.Tensor:
        if self._on_device():
            gate = (torch.rand((), device=x.device) < self.p).float()
        elif not self._draw():  # Eq. 14 on the CPU generator, as below
            return a_quant(x)
        else:
            gate = torch.ones((), device=x.device)
        seed = torch.randint(0, 2 ** 31 - 1, (), device=x.device, dtype=torch.int32)  # Philox key of this draw
        return a_quant.quantize_perturbed(x, self.placement, gate, seed)

    def perturb(self, x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.gate == "layer":
            if self._on_device():  # the noise is drawn every time (and fuses into a compiled kernel)
                gate = (torch.rand((), device=x.device) < self.p).to(x.dtype)
                return x + (torch.rand_like(x) - 0.5) * step * gate
            # Eq. 14: one Bernoulli(p) draw per layer per forward, on the CPU generator,
            # so deciding costs no device synchronization and skips the noise 1 - p of the time.
            if not self._draw():
                return x
            return x + (torch.rand_like(x) - 0.5) * step
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < self.p
        return x + (torch.rand_like(x) - 0.5) * step * keep

    def _draw(self) -> bool:
        """One Bernoulli(p) gate on the CPU generator (counted for the epoch's `sfp_fired`)."""
        fired = torch.rand(()).item() < self.p
        self.draws += 1
        self.fired += fired
        return fired

    def extra_repr(self) -> str:
        return f"p={self.p}, gate={self.gate}, placement={self.placement}"


def attach_sfp(model: nn.Module, p: float, gate: str = "layer", placement: str = "after") -> int:
    """Give every quantized conv with a quantized input its own SFP gate; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, QuantConv2d) and isinstance(module.a_quant, Quantizer):
            module.perturb = StochasticFeaturePerturbation(p, gate, placement).train(module.training)
            count += 1
    return count
