"""Fake quantization (layer `quant`): named parts (ste), the formulas (functional), the quantizers
and their registry `QUANTIZERS` (LSQ, LSQ+, PACT), the quantized layers, `prepare_qat`, and the choice between
the torch path and the Triton kernels (`path`, the kernels themselves in `fpq.kernels`).

Owns every quantizer formula of the specification. It may import `fpq.models` (the conv-tap
API), `fpq.kernels` and `fpq.errors`/`fpq.io`, nothing above. Takes plain arguments (bits, a quantizer name),
never a run config. This `__init__` is torch-free (`FP_BITS`, `KERNEL_PATHS`, and everything else on first use),
so `fpq.config` can read it while validating a config without importing torch.
"""
from __future__ import annotations

import importlib

FP_BITS = 32  # a bit width of 32 means "leave this layer in float"
KERNEL_PATHS = ("torch", "triton")  # runtime.kernels: the torch path or the Triton kernels (`path`)

_LAZY = {
    "QUANT_LAYERS": "layers", "QuantConv2d": "layers", "QuantLinear": "layers",
    "Replacement": "prepare", "calibrate": "prepare", "prepare_qat": "prepare",
    "QUANTIZERS": "quantizers", "LsqPlusQuantizer": "quantizers", "LsqQuantizer": "quantizers",
    "MinMaxWeightQuantizer": "quantizers", "PactQuantizer": "quantizers", "Quantizer": "quantizers",
    "quantizer_parameters": "quantizers",
    "kernel_path": "path", "set_kernels": "path",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"fpq.quant.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fpq.quant' has no attribute {name!r}")


__all__ = ["FP_BITS", "KERNEL_PATHS", *_LAZY]
