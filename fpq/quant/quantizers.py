"""Fake quantizers (LSQ, LSQ+, PACT, min/max weights) and their registry.

Each quantizer observes min/max during an explicit calibration pass (`calibrating=True`, the
input passes through unchanged) and then initializes its parameters from what it saw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from fpq.quant.functional import fake_quant_fused, fake_quant_reference, pact_fused, pact_lower, pact_reference
from fpq.quant.ste import int_range


class Quantizer(nn.Module):
    """Base: bit width, min/max observation and the calibration protocol.

    `fused` picks the single autograd function over the reference op chain (runtime.fused_quant);
    `kernels` ("torch" or "triton", set on a built model by `fpq.quant.path.set_kernels`) picks the
    fused Triton kernels (fpq.kernels) where the quantizer has them: LSQ, LSQ+ and the min/max
    weight grid. PACT's activation clip stays on the torch path.
    """

    def __init__(self, bits: int, shape: tuple[int, ...], fused: bool = False):
        super().__init__()
        self.bits, self.fused = bits, fused
        self.kernels = "torch"
        self.qmax = int_range(bits)[1]
        self.per_channel = len(shape) > 0
        self.calibrating = False
        self.register_buffer("observed_min", torch.full(shape, math.inf))
        self.register_buffer("observed_max", torch.full(shape, -math.inf))

    def fake_quant_fn(self) -> Callable:
        """The affine fake-quantization function of this quantizer's path: the Triton kernels
        (`kernels` = "triton"), else the fused autograd function or the reference op chain."""
        if self.kernels == "triton":
            from fpq.kernels.ops import fake_quant

            return fake_quant
        return fake_quant_fused if self.fused else fake_quant_reference

    def _reduce_dims(self, x: torch.Tensor) -> list[int]:
        return list(range(1, x.dim())) if self.per_channel else list(range(x.dim()))

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        dims = self._reduce_dims(x)
        lo, hi = x.amin(dim=dims), x.amax(dim=dims)
        shape = self.observed_min.shape
        self.observed_min.copy_(torch.minimum(self.observed_min, lo.reshape(shape)))
        self.observed_max.copy_(torch.maximum(self.observed_max, hi.reshape(shape)))

    def init_from_observed(self) -> None:
        raise NotImplementedError

    def step_size(self) -> torch.Tensor:
        """The grid step s, detached (SFP draws its noise in [-s/2, s/2])."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self.observe(x)
            return x
        return self.quantize(x)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


def minmax_step_offset(x_min: torch.Tensor, x_max: torch.Tensor, qmax: int):
    """Sec. 3.1 calibration: s = (x_max - x_min)/(2^b - 1), z = round(q_max - x_max/s)."""
    step = ((x_max - x_min) / qmax).clamp_min(1e-8)
    return step, torch.round(qmax - x_max / step)


class LsqQuantizer(Quantizer):
    """LSQ with the paper's asymmetric affine grid; s learned, z fixed after calibration."""

    learn_offset = False

    def __init__(self, bits: int, shape: tuple[int, ...] = (), fused: bool = False):
        super().__init__(bits, shape, fused)
        self.step = nn.Parameter(torch.ones(shape))
        offset = torch.zeros(shape)
        if self.learn_offset:
            self.offset = nn.Parameter(offset)
        else:
            self.register_buffer("offset", offset)

    @torch.no_grad()
    def init_from_observed(self) -> None:
        step, offset = minmax_step_offset(self.observed_min, self.observed_max, self.qmax)
        self.step.copy_(step)
        self.offset.copy_(offset)

    def grad_scale(self, x: torch.Tensor) -> float:
        """LSQ g = 1/sqrt(numel * Q_p), numel = elements sharing one step (per sample for activations)."""
        numel = x[0].numel() if x.dim() > 1 else x.numel()
        return 1.0 / math.sqrt(numel * self.qmax)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return self.fake_quant_fn()(x, self.step, self.offset, self.qmax, self.grad_scale(x), self.learn_offset)

    def quantize_perturbed(self, x: torch.Tensor, placement: str, gate: torch.Tensor, seed: torch.Tensor):
        """SFP's noise U[-s/2, s/2] * gate added after (or before) quantizing, drawn from `seed`
        inside the Triton kernel's one pass (`kernels` = "triton" only)."""
        from fpq.kernels.ops import fake_quant

        return fake_quant(x, self.step, self.offset, self.qmax, self.grad_scale(x), self.learn_offset,
                          noise=placement, gate=gate, seed=seed)

    def step_size(self) -> torch.Tensor:
        return self.step.detach()


class LsqPlusQuantizer(LsqQuantizer):
    """LSQ+: the offset is learned too (x_int = clip(round(x/s + z))), so the grid can shift by a
    fraction of a step; both s and z get LSQ's gradient scale."""

    learn_offset = True


class MinMaxWeightQuantizer(Quantizer):
    """Uniform per-channel weight grid from the weights' current min/max (PACT's weight side)."""

    def init_from_observed(self) -> None:
        pass  # the grid follows the weights at every step

    def quantize(self, w: torch.Tensor) -> torch.Tensor:
        dims = self._reduce_dims(w)
        with torch.no_grad():
            step, offset = minmax_step_offset(w.amin(dim=dims, keepdim=True), w.amax(dim=dims, keepdim=True), self.qmax)
        return self.fake_quant_fn()(w, step, offset, self.qmax, 1.0)

    def step_size(self) -> torch.Tensor:
        return ((self.observed_max - self.observed_min) / self.qmax).detach()


class PactQuantizer(Quantizer):
    """PACT: clip to a learned alpha, then a uniform grid; gradient of alpha by the clip's STE.

    Inputs with negative values at calibration (the image, MobileNetV2's linear bottlenecks)
    get the symmetric clip [-alpha, alpha]; post-ReLU inputs the original [0, alpha].
    """

    def __init__(self, bits: int, shape: tuple[int, ...] = (), fused: bool = False):
        super().__init__(bits, shape, fused)
        self.alpha = nn.Parameter(torch.ones(shape))
        self.register_buffer("signed", torch.zeros(shape, dtype=torch.bool))

    @torch.no_grad()
    def init_from_observed(self) -> None:
        self.signed.copy_(self.observed_min < 0)
        bound = torch.maximum(self.observed_max, -self.observed_min)
        self.alpha.copy_(bound.clamp_min(1e-3))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        fn = pact_fused if self.fused else pact_reference
        return fn(x, self.alpha, self.signed, self.qmax)

    def step_size(self) -> torch.Tensor:
        return ((self.alpha - pact_lower(self.alpha, self.signed)) / self.qmax).detach()


@dataclass(frozen=True)
class QuantizerFamily:
    """How one method quantizes weights (per output channel) and activations (per tensor): each a
    factory called with keywords, `weight(bits=, shape=, fused=)` and `activation(bits=, fused=)`."""

    weight: Callable[..., Quantizer]
    activation: Callable[..., Quantizer]


def _per_tensor(cls: type) -> Callable[..., Quantizer]:
    return lambda *, bits, fused=False: cls(bits, (), fused)


QUANTIZERS: dict[str, QuantizerFamily] = {
    "lsq": QuantizerFamily(LsqQuantizer, _per_tensor(LsqQuantizer)),
    "lsq+": QuantizerFamily(LsqPlusQuantizer, _per_tensor(LsqPlusQuantizer)),
    "pact": QuantizerFamily(MinMaxWeightQuantizer, _per_tensor(PactQuantizer)),
}


def quantizers_in(model: nn.Module) -> list[Quantizer]:
    """Every quantizer of `model` (weights' and activations'), in module order."""
    return [m for m in model.modules() if isinstance(m, Quantizer)]


def quantizer_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Step sizes, learned offsets and PACT alphas (kept apart for the weight-decay choice)."""
    return [p for q in quantizers_in(model) for p in q.parameters(recurse=False)]
