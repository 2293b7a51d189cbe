"""Hessian trace (Hutchinson, Rademacher probes) and top eigenvalue (power iteration), Fig. 5.

The loss is mean cross-entropy over a fixed set of batches, with the model in eval mode (so BN
statistics and SFP stay out of it); the parameters are the conv/linear weights by default (not
step sizes). The caller's train/eval flags, requires_grad flags and .grad stay as they were.

The trace's probes go through one backward in chunks of `PROBE_CHUNK` (autograd's
`is_grads_batched`, a vmap over the Hessian-vector product): a chunk of 8 probes costs about one
launch-bound backward instead of eight (3.3x faster on the CPU already, 4 probes of ResNet-20),
with the same probes and the same samples up to fp32 rounding (tests/measure/test_hessian.py).
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


PROBE_CHUNK = 8  # probes per batched backward: memory grows with it (8 x one HVP's activations)


def _hvp_batched(grads, params, vecs: list[list[torch.Tensor]], retain: bool) -> list[list[torch.Tensor]]:
    """H v for every v of `vecs` in one vmapped backward: [probe][param]."""
    stacked = [torch.stack([v[i] for v in vecs]) for i in range(len(params))]
    hv = torch.autograd.grad(grads, params, grad_outputs=stacked, is_grads_batched=True, retain_graph=retain)
    return [[h[k] for h in hv] for k in range(len(vecs))]


def _rademacher(params, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
    return [torch.randint(0, 2, p.shape, generator=gen, device=p.device, dtype=p.dtype) * 2 - 1 for p in params]


def hutchinson_trace(model: nn.Module, batches: Sequence[Batch], params: Sequence[torch.Tensor] | None = None,
                     probes: int = 16, seed: int = 0, chunk: int = PROBE_CHUNK) -> TraceEstimate:
    """Tr(H) ~ mean_k v_k^T H v_k with Rademacher v_k; H of the loss averaged over `batches`.
    `chunk` probes share one batched backward (1: one backward per probe, the plain loop)."""
    params = list(params) if params is not None else weight_parameters(model)
    if probes < 2:
        raise ValueError("probes must be >= 2 for a standard error")
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    samples = torch.zeros(probes, dtype=torch.float64, device=params[0].device)
    with measurement_mode(model, params):
        for batch in batches:
            grads = _gradients(model, batch, params)
            for start in range(0, probes, chunk):
                ks = range(start, min(probes, start + chunk))
                vecs = [_rademacher(params, seed * 7919 + k) for k in ks]  # same probe k for every batch
                last = ks[-1] == probes - 1
                hvs = ([_hvp(grads, params, vecs[0], retain=not last)] if chunk == 1
                       else _hvp_batched(grads, params, vecs, retain=not last))
                for k, hv, vec in zip(ks, hvs, vecs):
                    samples[k] += sum((h * v).sum() for h, v in zip(hv, vec)).double() / len(batches)
    values = samples.cpu()  # one host sync for all probes
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
