"""Quantized conv/linear: activation quantizer on the input, weight quantizer on the weight.

Both subclass their float layer, so `CifarModel.conv_layers()` still lists them in order.
Two slots let a method piece (fpq.method.pieces) hook a layer, both empty unless a piece fills them:
`perturb`, activation side, called as `perturb(x, a_quant)` in place of `a_quant(x)` (SFP), and
`weight_hook`, weight side, called as `weight_hook(w_hat, w_quant)` on the fake-quantized weight.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _QuantMixin:
    w_quant: nn.Module
    a_quant: nn.Module
    perturb: nn.Module | None
    weight_hook: nn.Module | None

    def _init_quant(self, w_quant: nn.Module, a_quant: nn.Module) -> None:
        self.w_quant, self.a_quant, self.perturb, self.weight_hook = w_quant, a_quant, None, None

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.perturb is None:
            return self.a_quant(x)
        return self.perturb(x, self.a_quant)

    def quantize_weight(self) -> torch.Tensor:
        w_hat = self.w_quant(self.weight)
        return w_hat if self.weight_hook is None else self.weight_hook(w_hat, self.w_quant)

    @classmethod
    def _copy_float(cls, layer: nn.Module, new: nn.Module) -> nn.Module:
        """`new` is made on the float layer's device and dtype; its weights are copied, and its
        quantizers follow it there too."""
        with torch.no_grad():
            new.weight.copy_(layer.weight)
            if layer.bias is not None:
                new.bias.copy_(layer.bias)
        return new.to(device=layer.weight.device, dtype=layer.weight.dtype).train(layer.training)

    @staticmethod
    def _factory(layer: nn.Module) -> dict:
        return {"device": layer.weight.device, "dtype": layer.weight.dtype}


class QuantConv2d(_QuantMixin, nn.Conv2d):
    @classmethod
    def from_float(cls, conv: nn.Conv2d, w_quant: nn.Module, a_quant: nn.Module) -> "QuantConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, **cls._factory(conv))
        new._init_quant(w_quant, a_quant)
        return cls._copy_float(conv, new)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantize_weight(), self.bias)


class QuantLinear(_QuantMixin, nn.Linear):
    @classmethod
    def from_float(cls, linear: nn.Linear, w_quant: nn.Module, a_quant: nn.Module) -> "QuantLinear":
        new = cls(linear.in_features, linear.out_features, linear.bias is not None, **cls._factory(linear))
        new._init_quant(w_quant, a_quant)
        return cls._copy_float(linear, new)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantize_input(x), self.quantize_weight(), self.bias)


QUANT_LAYERS = (QuantConv2d, QuantLinear)
