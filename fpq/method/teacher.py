"""The frozen teacher's forward at inference speed (the teacher of KD and CSD).

The teacher never learns, so its forward keeps no autograd state (no_grad, parameters frozen,
eval mode), runs in the student's memory format, and with `bf16` its conv and linear weights are
cast to bf16 once: autocast caches the casts of weights that require grad only, so a frozen
fp32 teacher would be re-cast at every forward (the outputs are the same bits either way).

Not `inference_mode`: the CSD taps' outputs feed the student's loss, and autograd refuses to
save an inference tensor for a backward.

On CUDA, `cuda_graph` replays a CUDA graph of the whole forward, captured once for the one
full-batch shape (the last partial batch of an epoch, any other shape, and every CPU call run
the eager forward). A replay writes the same output tensors again: the loss consumes them before
the next step's forward (CSD keeps its own standardized copy, KD its log-softmax).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from fpq.models import FeatureTaps

WARMUP_CALLS = 3  # eager forwards on a side stream before the capture (cuDNN picks its kernels)


def prepare_teacher(teacher: nn.Module, channels_last: bool = False, bf16: bool = False) -> nn.Module:
    """Freeze a teacher for inference speed: eval, no gradients, NHWC if asked, bf16 weights if asked."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    if bf16:  # BatchNorm keeps fp32 parameters, as it does under autocast
        for m in teacher.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.to(torch.bfloat16)
    return teacher


def autocast_bf16(x: torch.Tensor, enabled: bool, cache: bool = True):
    """bf16 autocast on x's device (CUDA or CPU) when enabled; otherwise a no-op (fp32). `cache`
    off inside a CUDA-graph capture (autocast's weight-cast cache must not outlive it)."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16, cache_enabled=cache) if enabled else nullcontext()


class TeacherForward:
    """teacher(x) -> logits, the taps (if any) receiving its conv outputs; eager or graph replay."""

    def __init__(self, teacher: nn.Module, taps: FeatureTaps | None, bf16: bool = False, cuda_graph: bool = False):
        self.teacher, self.taps, self.bf16, self.cuda_graph = teacher, taps, bf16, cuda_graph
        self.graph = None  # the captured CUDA graph, its static input, logits and tap outputs
        self.static: tuple | None = None
        self.replays = 0

    def uses_graph(self, x: torch.Tensor) -> bool:
        """Whether this input is (or will be) served by the CUDA graph: the key on, a CUDA tensor,
        and the shape, dtype and strides of the captured batch."""
        if not (self.cuda_graph and x.is_cuda):
            return False
        if self.static is None:
            return True
        sx = self.static[0]
        return (x.shape, x.dtype, x.stride(), x.device) == (sx.shape, sx.dtype, sx.stride(), sx.device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_graph(x):
            return self._eager(x)
        if self.graph is None:
            self._capture(x)
        static_x, logits, taps = self.static
        static_x.copy_(x)
        self.graph.replay()
        self.replays += 1
        if self.taps is not None and self.taps.active:
            self.taps.outputs.extend(taps)  # the hooks do not run in a replay
        return logits

    def _eager(self, x: torch.Tensor, cache: bool = True) -> torch.Tensor:
        with autocast_bf16(x, self.bf16, cache):
            return self.teacher(x)

    def _capture(self, x: torch.Tensor) -> None:
        outputs = self.taps.outputs if self.taps is not None else []
        before = len(outputs)
        static_x = x.clone()
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._eager(static_x, cache=False)
                del outputs[before:]
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self._eager(static_x, cache=False)  # autocast's cache must stay off in a capture
        taps = list(outputs[before:])
        del outputs[before:]
        self.graph, self.static = graph, (static_x, logits, taps)
