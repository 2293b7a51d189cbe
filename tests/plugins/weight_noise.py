"""LSQ + weight noise, a contributor's new method piece: this file is all it takes.

Weight side: during training, Gaussian noise of std sigma * s (s: the weight quantizer's step, per
output channel) is added to every fake-quantized weight; never at evaluation. Loaded with
`FPQ_PLUGINS=tests/plugins/weight_noise.py` (tests/test_extension.py), it registers the piece and the
method `lsq+wn`, and the run config, the workflow schema, the cell, the budget, the job order and the
tables take both as they come.
"""
from __future__ import annotations

from fpq.method.pieces import Key, Piece, register_piece
from fpq.method.registry import MethodSpec, register_method


class WeightNoise(Piece):
    name, label = "wnoise", "WN"
    keys = (Key("wnoise_sigma", float, 0.5, "Std of the Gaussian noise on the fake-quantized weights, in steps.",
                {"exclusiveMinimum": 0}),)

    def attach(self, student, quant) -> int:
        from torch import nn

        from fpq.quant.layers import QUANT_LAYERS
        from fpq.quant.quantizers import Quantizer

        class Noise(nn.Module):
            def __init__(self, sigma: float):
                super().__init__()
                self.sigma = sigma

            def forward(self, w_hat, w_quant):
                if not self.training:
                    return w_hat
                return w_hat + w_hat.new_empty(w_hat.shape).normal_() * w_quant.step_size() * self.sigma

        layers = [m for m in student.modules() if isinstance(m, QUANT_LAYERS) and isinstance(m.w_quant, Quantizer)]
        for layer in layers:
            layer.weight_hook = Noise(quant.wnoise_sigma).train(layer.training)
        return len(layers)


register_piece(WeightNoise)
register_method(MethodSpec("lsq+wn", "lsq", ("wnoise",), label="LSQ+WN",
                           description="LSQ + Gaussian noise of sigma * s on the fake-quantized weights"))
