"""One training step, eager or replayed from a CUDA graph (`runtime.cuda_graph`), and the test-set
forward the same two ways.

The step is factored so that the graph holds exactly the eager function: `forward_backward` (the
gradients zeroed in place, then the loss and its backward: CE, SFP's gates and noise, the
teacher's forward, CSD, KD; SAM's two passes) is what `Graphed` captures, and the optimizer step
runs after it, outside the graph (SGD's fused kernel reads the epoch's learning rate as a Python
number, which a graph would freeze). Zeroing in place rather than dropping the gradients is
what lets a replay rewrite the same gradient tensors; 0 + g is g, so the eager values are the same.

Inside a graph, SFP decides its per-layer gate on the device (`capturable`): the eager gate's
`.item()` would synchronize, which a capture refuses. Both gates are Bernoulli(p) per layer per
step; they draw from different generators (the CPU one eagerly, the device one in a graph).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from fpq.method.objective import Objective
from fpq.method.perturb import StochasticFeaturePerturbation
from fpq.method.teacher import autocast_bf16
from fpq.run.graph import Backend, Graphed


def sam_step(objective: Objective, params: list[nn.Parameter], x, y, rho: float):
    """SAM (Foret et al.): gradient at w + rho*g/||g||, applied at w. Two passes per step."""
    loss, logits = objective(x, y)
    loss.backward()
    with torch.no_grad():
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        shifts = [(p, p.grad * (rho / (norm + 1e-12))) for p in params if p.grad is not None]
        for p, e in shifts:
            p.add_(e)
        for g in grads:
            g.zero_()
    recording, objective.record = objective.record, False  # the epoch's loss parts are the first pass's
    objective(x, y)[0].backward()
    objective.record = recording
    with torch.no_grad():
        for p, e in shifts:
            p.sub_(e)
    return loss, logits


def forward_backward(objective: Objective, optimizer, params: list[nn.Parameter], x, y, sam_rho: float | None):
    """The step's loss and gradients, written into the existing gradient tensors; (loss, logits)."""
    optimizer.zero_grad(set_to_none=False)
    if sam_rho:
        return sam_step(objective, params, x, y, sam_rho)
    loss, logits = objective(x, y)
    loss.backward()
    return loss, logits


def train_step(objective: Objective, optimizer, params: list[nn.Parameter], x, y, sam_rho: float | None):
    """One eager optimizer step (two forward/backward passes under SAM); returns (loss, logits)."""
    loss, logits = forward_backward(objective, optimizer, params, x, y, sam_rho)
    optimizer.step()
    return loss, logits


def set_capturable(model: nn.Module, on: bool) -> None:
    """SFP's gate drawn on the device (graph-safe) or on the CPU generator (eager default)."""
    for m in model.modules():
        if isinstance(m, StochasticFeaturePerturbation):
            m.capturable = on


class TrainStep:
    """step(x, y) -> (loss, logits): eager, or `forward_backward` replayed from a CUDA graph."""

    def __init__(self, objective: Objective, optimizer, model: nn.Module, sam_rho: float | None,
                 graph: bool = False, log: Callable[[str], None] | None = None, backend: Backend | None = None):
        self.objective, self.optimizer, self.sam_rho = objective, optimizer, sam_rho
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.graph = None
        if graph:
            set_capturable(model, True)
            objective.autocast_cache = False  # autocast's weight-cast cache must not outlive a capture
            self.graph = Graphed(self._forward_backward, "training step", backend, on_failure=log)

    def _forward_backward(self, x, y):
        return forward_backward(self.objective, self.optimizer, self.params, x, y, self.sam_rho)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        if self.graph is None:
            return train_step(self.objective, self.optimizer, self.params, x, y, self.sam_rho)
        loss, logits = self.graph(x, y)
        self.optimizer.step()
        return loss, logits


class EvalForward:
    """model(x) for the test set under the run's autocast: eager, compiled, or a CUDA graph replay."""

    def __init__(self, forward: Callable, bf16: bool, graph: bool = False, log: Callable[[str], None] | None = None,
                 backend: Backend | None = None):
        self.forward, self.bf16 = forward, bf16
        self.graph = Graphed(self._logits, "test forward", backend, warmup=1, on_failure=log) if graph else None

    @torch.no_grad()
    def _logits(self, x: torch.Tensor):
        with autocast_bf16(x, self.bf16, cache=self.graph is None):
            return (self.forward(x).float(),)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.graph or self._logits)(x)[0]


def graph_report(step: TrainStep, evaluation: EvalForward) -> dict | None:
    """`precision.cuda_graph` of metrics.json: each graph captured or why not, its build seconds."""
    if step.graph is None and evaluation.graph is None:
        return None
    return {name: g.report() for name, g in (("train", step.graph), ("eval", evaluation.graph)) if g is not None}


def graph_line(report: dict) -> str:
    """'CUDA graphs: train captured (build 2.1 s), eval captured (build 0.3 s)' for train.log."""
    parts = [f"{name} " + (f"captured (build {r['build_seconds']:.1f} s)" if r["captured"]
                           else f"eager ({r['failure'] or 'not captured yet'})") for name, r in report.items()]
    return "CUDA graphs: " + ", ".join(parts)
