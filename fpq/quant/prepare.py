"""prepare_qat: swap every conv/linear of a model for its quantized twin; calibrate: init s, z."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fpq.quant import FP_BITS
from fpq.quant.layers import QUANT_LAYERS, QuantConv2d, QuantLinear
from fpq.quant.quantizers import QUANTIZERS, quantizers_in


@dataclass(frozen=True)
class Replacement:
    name: str
    kind: str
    w_bits: int
    a_bits: int


def _quantizer(family, bits: int, shape, fused: bool, weight: bool) -> nn.Module:
    if bits >= FP_BITS:
        return nn.Identity()
    return family.weight(bits=bits, shape=shape, fused=fused) if weight else family.activation(bits=bits, fused=fused)


def prepare_qat(model: nn.Module, w_bits: int, a_bits: int, method: str = "lsq",
                first_last_bits: int = 8, fused: bool = False) -> list[Replacement]:
    """Replace, in place, every nn.Conv2d/nn.Linear by QuantConv2d/QuantLinear (weights copied).

    The first conv and the last linear get max(bits, first_last_bits): 8 bit at low-bit
    settings, float when the whole model is float (w_bits = a_bits = 32 is then the identity).
    Train/eval mode is kept. Returns the list of replacements, in module order.
    """
    if method not in QUANTIZERS:
        raise KeyError(f"unknown quantizer {method!r}; registered: {sorted(QUANTIZERS)}")
    family = QUANTIZERS[method]
    ends = {id(model.conv_layers()[0]), id(model.classifier())}
    report: list[Replacement] = []
    for name, child in list(model.named_modules()):
        if not isinstance(child, (nn.Conv2d, nn.Linear)) or isinstance(child, QUANT_LAYERS):
            continue
        wb, ab = (w_bits, a_bits)
        if id(child) in ends:
            wb, ab = max(w_bits, first_last_bits), max(a_bits, first_last_bits)
        channel_shape = (child.weight.shape[0],) + (1,) * (child.weight.dim() - 1)
        layer_cls = QuantConv2d if isinstance(child, nn.Conv2d) else QuantLinear
        device = child.weight.device
        w_quant = _quantizer(family, wb, channel_shape, fused, weight=True).to(device)
        a_quant = _quantizer(family, ab, (), fused, weight=False).to(device)
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, layer_cls.from_float(child, w_quant, a_quant))
        report.append(Replacement(name, layer_cls.__name__, wb, ab))
    return report


@torch.no_grad()
def calibrate(model: nn.Module, images: torch.Tensor) -> int:
    """Run `images` through the float model once; every quantizer sets s, z from its min/max.

    Eval mode for the pass (BN statistics untouched), the caller's mode restored. Returns the
    number of quantizers initialized.
    """
    quantizers = quantizers_in(model)
    was_training = model.training
    model.eval()
    for q in quantizers:
        q.calibrating = True
    try:
        model(images)
    finally:
        for q in quantizers:
            q.calibrating = False
        model.train(was_training)
    for q in quantizers:
        q.init_from_observed()
    return len(quantizers)
