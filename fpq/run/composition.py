"""What a run's loss is made of, epoch by epoch: each part's mean (CE, each piece's term, a term's
per-tap detail), what the pieces report of themselves (the share of SFP gates that fired), and the
gradient norm each part sends to the weights on one fixed batch.

The part means are summed on the device by the objective during the epoch (`Objective.record`:
eager steps only; a CUDA-graph replay or a compiled step records nothing, and the row says so by
having no means). The gradient probe is one extra forward and one backward per part, once per
epoch, off the timed path; it leaves the run as it found it (RNG streams and BN statistics), so a
run with it trains the same steps as one without.
"""
from __future__ import annotations

import torch
from torch import nn

from fpq.method.objective import Objective

PROBE_IMAGES = 128  # the fixed batch of the gradient probe (un-augmented training images)


def weights_of(model: nn.Module) -> list[nn.Parameter]:
    """The conv and linear weights (not the step sizes, offsets or BN parameters)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad]


def _norm(grads) -> float:
    norms = [torch.linalg.vector_norm(g.float()) for g in grads if g is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def gradient_norms(objective: Objective, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """||d part / d weights|| for each part of the loss on the batch (x, y), in train mode as a step
    sees it; the model's buffers (BN statistics) and every RNG stream are restored after."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [x.device] if x.device.type == "cuda" else []
    weights = weights_of(model)
    with torch.random.fork_rng(devices=devices):
        taps = [t for t in (objective.student_taps, objective.teacher_taps) if t is not None]
        recording, objective.record = objective.record, False
        for t in taps:
            t.start()
        try:
            values, _ = objective.parts(x, y)
        finally:
            objective.record = recording
            for t in taps:
                t.stop()
                t.outputs.clear()
        names = list(values)
        norms = {name: _norm(torch.autograd.grad(values[name], weights, retain_graph=i + 1 < len(names),
                                                 allow_unused=True)) for i, name in enumerate(names)}
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return norms


def epoch_composition(objective: Objective, model: nn.Module, probe: tuple | None) -> dict:
    """The row keys of one epoch: `loss_parts` (each part's mean over the epoch's images, with the
    steps recorded; absent where the step recorded nothing), each piece's `epoch_stats`, and
    `grad_norms` on the probe batch. The pieces' counts are zero after it: what the probe drew is
    not the next epoch's (a resumed run, which has no probe before its first epoch, counts the same)."""
    row = {}
    parts = objective.take_parts()
    if parts["steps"]:
        row["loss_parts"] = parts
    for piece in objective.spec.parts:
        row.update(piece.epoch_stats(model))
    if probe is not None:
        try:
            row["grad_norms"] = gradient_norms(objective, model, *probe)
        except RuntimeError as err:  # a probe the device refuses (e.g. beside a CUDA graph) costs the run nothing
            row["grad_norms_failed"] = f"{type(err).__name__}: {err}"[:300]
        for piece in objective.spec.parts:
            piece.epoch_stats(model)  # drops what the probe counted (its SFP gates): the next epoch counts steps only
    return row


def composition_text(row: dict) -> str:
    """' | ce 1.234 csd 0.456 | sfp fired 10%' for the train.log line ('' where nothing was recorded)."""
    parts = {k: v for k, v in row.get("loss_parts", {}).items() if k != "steps" and not isinstance(v, list)}
    text = (" | " + " ".join(f"{k} {v:.4f}" for k, v in parts.items())) if len(parts) > 1 else ""
    shares = [f"{k.replace('_', ' ')} {100 * v:.0f}%" for k, v in row.items() if k.endswith("_fired")]
    return text + (" | " + " ".join(shares) if shares else "")
