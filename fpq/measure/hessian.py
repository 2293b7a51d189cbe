"""Hessian trace (Hutchinson, Rademacher probes) and top eigenvalue (power iteration), Fig. 5.

The loss is mean cross-entropy over a fixed set of batches, with the model in eval mode (so BN
statistics and SFP stay out of it); the parameters are the conv/linear weights by default (not
step sizes). The caller's train/eval flags, requires_grad flags and .grad stay as they were.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TraceEstimate:
    mean: float
    stderr: float
    probes: int

    def as_dict(self) -> dict:
        return asdict(self)


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The default parameter set: weights of every conv and linear layer, in module order."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@contextmanager
def measurement_mode(model: nn.Module, params: Sequence[torch.Tensor]) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    grads_needed = [p.requires_grad for p in params]
    model.eval()
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training
        for p, needed in zip(params, grads_needed):
            p.requires_grad_(needed)


def _gradients(model: nn.Module, batch: Batch, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    x, y = batch
    loss = F.cross_entropy(model(x).float(), y)
    return torch.autograd.grad(loss, params, create_graph=True)


def _hvp(grads, params, vec, retain: bool) -> list[torch.Tensor]:
    dot = sum((g * v).sum() for g, v in zip(grads, vec))
    return list(torch.autograd.grad(dot, params, retain_graph=retain))


def _rademacher(params, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
    return [torch.randint(0, 2, p.shape, generator=gen, device=p.device, dtype=p.dtype) * 2 - 1 for p in params]


def hutchinson_trace(model: nn.Module, batches: Sequence[Batch], params: Sequence[torch.Tensor] | None = None,
                     probes: int = 16, seed: int = 0) -> TraceEstimate:
    """Tr(H) ~ mean_k v_k^T H v_k with Rademacher v_k; H of the loss averaged over `batches`."""
    params = list(params) if params is not None else weight_parameters(model)
    if probes < 2:
        raise ValueError("probes must be >= 2 for a standard error")
    samples = [0.0] * probes
    with measurement_mode(model, params):
        for batch in batches:
            grads = _gradients(model, batch, params)
            for k in range(probes):
                vec = _rademacher(params, seed * 7919 + k)  # same probe k for every batch
                hv = _hvp(grads, params, vec, retain=k < probes - 1)
                samples[k] += sum((h * v).sum() for h, v in zip(hv, vec)).item() / len(batches)
    values = torch.tensor(samples, dtype=torch.float64)
    return TraceEstimate(float(values.mean()), float(values.std(unbiased=True) / math.sqrt(probes)), probes)


def hessian_vector_product(model: nn.Module, batches: Sequence[Batch], params: Sequence[torch.Tensor],
                           vec: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    total = [torch.zeros_like(p) for p in params]
    with measurement_mode(model, params):
        for batch in batches:
            hv = _hvp(_gradients(model, batch, params), params, vec, retain=False)
            total = [t + h / len(batches) for t, h in zip(total, hv)]
    return total


def top_eigenvalue(model: nn.Module, batches: Sequence[Batch], params: Sequence[torch.Tensor] | None = None,
                   iters: int = 100, tol: float = 1e-5, seed: int = 0) -> float:
    """Largest-magnitude eigenvalue of H by power iteration (relative tolerance `tol`)."""
    params = list(params) if params is not None else weight_parameters(model)
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
    vec = [torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype) for p in params]
    eigenvalue = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((v * v).sum() for v in vec))
        vec = [v / norm for v in vec]
        hv = hessian_vector_product(model, batches, params, vec)
        new = sum((h * v).sum() for h, v in zip(hv, vec)).item()
        vec = [h.detach() for h in hv]
        if eigenvalue and abs(new - eigenvalue) <= tol * abs(eigenvalue):
            return new
        eigenvalue = new
    return eigenvalue
