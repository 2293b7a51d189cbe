"""The Triton kernels, in Triton's interpreter on the CPU. Without Triton (the CPU-only torch
build ships none) every module here skips, saying why, and runs keep the torch path."""
from fpq.kernels import available

NO_TRITON = available()  # None where Triton imports; else the one-line reason
