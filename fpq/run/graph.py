"""Replay a step from a CUDA graph: the launch-free path of `runtime.cuda_graph`.

A training step of these CIFAR models is launch-bound on a big GPU (an FPQ step is hundreds of
small kernels: fake quantizers, SFP, CSD, the teacher, the backward), so the step is captured once
as a CUDA graph and replayed: one launch per step instead of hundreds.

`Graphed(fn)` is a thin wrapper: the captured function *is* the eager one. Calls with a new input
signature (shape, dtype, strides, device) run eagerly. For the captured signature, the first
`warmup` calls run eagerly on a side stream (real calls: cuDNN and cuBLAS pick their kernels,
autograd allocates the gradients that the graph then writes in place), the next call captures —
a capture executes nothing, so it is replayed at once — and every later call copies its inputs
into the graph's static input tensors and replays. Outputs are the graph's static tensors,
detached: they are rewritten by the next replay, so a caller reads them before the next call.

Never a crash for speed: a capture that fails (an op that synchronizes, an op that a graph cannot
hold) leaves a one-line reason in `failure`, frees the partial graph, and this call and every
later one run the eager function, with the same results.

The capture itself is a `Backend` (`CudaGraphBackend` on CUDA); tests drive the wrapper's logic on
the CPU through a backend that replays by calling the function again.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol, Sequence

import torch

WARMUP_CALLS = 3


class Backend(Protocol):
    def capture(self, fn: Callable, inputs: Sequence[torch.Tensor]) -> tuple: ...

    def replay(self) -> None: ...

    def warmup(self, fn: Callable, inputs: Sequence[torch.Tensor]) -> tuple: ...


class CudaGraphBackend:
    """torch.cuda.CUDAGraph: warm-up calls on a side stream, then one capture in a private pool."""

    def __init__(self):
        self.graph: torch.cuda.CUDAGraph | None = None

    def warmup(self, fn: Callable, inputs: Sequence[torch.Tensor]) -> tuple:
        side = torch.cuda.Stream(inputs[0].device)
        side.wait_stream(torch.cuda.current_stream(inputs[0].device))
        with torch.cuda.stream(side):
            out = fn(*inputs)
        torch.cuda.current_stream(inputs[0].device).wait_stream(side)
        return out

    def capture(self, fn: Callable, inputs: Sequence[torch.Tensor]) -> tuple:
        torch.cuda.synchronize(inputs[0].device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn(*inputs)
        self.graph = graph
        return out

    def replay(self) -> None:
        self.graph.replay()

    def release(self) -> None:
        self.graph = None


def signature(tensors: Sequence[torch.Tensor]) -> tuple:
    return tuple((t.shape, t.dtype, t.stride(), t.device) for t in tensors)


class Graphed:
    """fn(*tensors) -> tuple of tensors, replayed from a graph for its one captured signature."""

    def __init__(self, fn: Callable, name: str, backend: Backend | None = None, warmup: int = WARMUP_CALLS,
                 on_failure: Callable[[str], None] | None = None):
        self.fn, self.name, self.warmup = fn, name, warmup
        self.backend = backend if backend is not None else CudaGraphBackend()
        self.on_failure = on_failure
        self.key: tuple | None = None  # the signature the warm-up calls and the capture are for
        self.warm_calls = 0
        self.static_in: list[torch.Tensor] | None = None
        self.static_out: tuple | None = None
        self.failure: str | None = None
        self.build_seconds = 0.0  # warm-up calls beyond a replay, and the capture
        self.replays = 0

    @property
    def captured(self) -> bool:
        return self.static_out is not None

    def __call__(self, *inputs: torch.Tensor) -> tuple:
        if self.failure is not None:
            return self.fn(*inputs)
        key = signature(inputs)
        if self.key is None:
            self.key = key
        if key != self.key:  # another shape (a partial last batch): eager, the graph stays
            return self.fn(*inputs)
        if self.static_out is None:
            if self.warm_calls < self.warmup:
                self.warm_calls += 1
                return self._timed(lambda: self.backend.warmup(self.fn, inputs))
            if not self._timed(lambda: self._capture(inputs)):
                return self.fn(*inputs)
        for static, x in zip(self.static_in, inputs):
            static.copy_(x)
        self.backend.replay()
        self.replays += 1
        return self.static_out

    def _timed(self, call: Callable):
        t0 = time.perf_counter()
        try:
            return call()
        finally:
            self.build_seconds += time.perf_counter() - t0

    def _capture(self, inputs: Sequence[torch.Tensor]) -> bool:
        static_in = [x.detach().clone() for x in inputs]
        try:
            out = self.backend.capture(self.fn, static_in)
        except Exception as err:  # noqa: BLE001 - any capture failure means: run eagerly
            self._fail(f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
            return False
        self.static_in = static_in
        self.static_out = tuple(o.detach() if isinstance(o, torch.Tensor) else o for o in out)
        return True

    def _fail(self, reason: str) -> None:
        self.failure = reason
        release = getattr(self.backend, "release", None)
        if release is not None:
            release()
        if self.on_failure is not None:
            self.on_failure(f"{self.name}: CUDA graph capture failed, running eagerly ({reason})")

    def report(self) -> dict:
        """What the run records under `precision`: captured or why not, build seconds, replays."""
        return {"captured": self.captured, "failure": self.failure, "build_seconds": round(self.build_seconds, 3),
                "replays": self.replays}
