"""Fig. 1 probe: how much a model's output moves under Gaussian noise on its (normalized) input."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def output_variance(model: nn.Module, images: torch.Tensor, sigma: float = 0.1, samples: int = 16,
                    seed: int = 0, chunk: int = 250) -> dict:
    """Variance across `samples` noisy copies x + sigma*eps, averaged over images and classes.

    Reported for logits and for softmax probabilities. Eval mode during the probe; the
    caller's mode is restored.
    """
    if samples < 2:
        raise ValueError("samples must be >= 2")
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=images.device).manual_seed(seed)
    logit_var, prob_var = [], []
    try:
        for start in range(0, images.shape[0], chunk):
            x = images[start:start + chunk]
            outs = torch.stack([model(x + sigma * torch.randn(x.shape, generator=gen, device=x.device)).float()
                                for _ in range(samples)])
            logit_var.append(outs.var(dim=0).mean(dim=1))
            prob_var.append(outs.softmax(dim=-1).var(dim=0).mean(dim=1))
    finally:
        model.train(was_training)
    logit, prob = torch.cat(logit_var), torch.cat(prob_var)
    n = logit.numel()
    return {"sigma": sigma, "samples": samples, "images": n,
            "logit_variance": logit.mean().item(), "logit_variance_stderr": (logit.std() / n ** 0.5).item(),
            "prob_variance": prob.mean().item(), "prob_variance_stderr": (prob.std() / n ** 0.5).item()}
