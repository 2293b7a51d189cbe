"""Collection for the whole project (`testpaths` are tests/ and fpq/, whose doctests run too).

Triton's interpreter runs fpq/kernels on CPU tensors (tests/kernels, the harness's triton rows).
Triton reads TRITON_INTERPRET when a kernel is defined, so it is set here, before anything imports
Triton; training runs never use it (a CPU run always takes the torch path, fpq.run.kernel_check).
Without Triton (the CPU-only torch build ships none) the modules of fpq/kernels that define the
kernels cannot be imported, so their doctests are not collected; tests/kernels skips itself.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

from fpq.kernels import available  # noqa: E402  (after the interpreter is chosen)

collect_ignore = [] if available() is None else ["fpq/kernels/ops.py", "fpq/kernels/fake_quant.py",
                                                 "fpq/kernels/csd.py"]
