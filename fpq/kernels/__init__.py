"""Fused Triton kernels for the hot elementwise work of QAT (layer `kernels`, below `quant`).

One forward and one backward pass per fake quantizer (LSQ, LSQ+, per tensor or per output
channel, with SFP's noise drawn inside the forward), and one statistics pass plus one gradient
pass per CSD layer, registered as PyTorch custom ops (`fpq::fake_quant`, `fpq::csd_layer` and
their backward ops) so that they run eagerly, inside the CUDA-graph step and under torch.compile.

Owns no formula of its own: each kernel computes exactly the formula of its torch twin
(`fpq.quant.functional`, `fpq.method.distill`), and tests/kernels proves them equal in Triton's
interpreter (TRITON_INTERPRET=1, CPU tensors). Imports torch and Triton only, nothing of fpq outside this
package (its launch parameters are `tuning`), so every layer above may use it. This `__init__` imports neither: `available()` says whether the
kernels can be loaded here, and `fpq.kernels.ops` is imported on first use.
"""
from __future__ import annotations

import importlib.util
import os


def interpreting() -> bool:
    """Triton's interpreter runs the kernels on CPU tensors (tests, a CPU proof)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available() -> str | None:
    """None when Triton can be imported here; else why not (one line)."""
    try:
        spec = importlib.util.find_spec("triton")
    except ImportError:  # a finder that refuses it (tests/test_no_triton.py stands in for such a machine)
        spec = None
    if spec is None:
        return "Triton is not installed (it ships with the Linux torch wheels)"
    try:
        import triton  # noqa: F401
    except Exception as err:  # a broken install: the torch path still runs
        return f"Triton does not import: {type(err).__name__}: {err}"
    return None
