"""Fake quantization: named parts (ste), the formula (functional), quantizers, layers, prepare_qat."""
from fpq.quant.layers import QUANT_LAYERS, QuantConv2d, QuantLinear
from fpq.quant.prepare import Replacement, calibrate, prepare_qat
from fpq.quant.quantizers import (QUANTIZERS, LsqPlusQuantizer, LsqQuantizer, MinMaxWeightQuantizer,
                                  PactQuantizer, Quantizer, quantizer_parameters)

__all__ = ["QUANTIZERS", "QUANT_LAYERS", "LsqPlusQuantizer", "LsqQuantizer", "MinMaxWeightQuantizer",
           "PactQuantizer", "QuantConv2d", "QuantLinear", "Quantizer", "Replacement", "calibrate",
           "prepare_qat", "quantizer_parameters"]
