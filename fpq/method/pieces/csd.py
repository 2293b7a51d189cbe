"""CSD, channel-wise standardization distillation (Eqs. 15-17, 22), as a method piece.

Reads the features of student and frozen teacher at the tap points (`csd_taps`: every conv output
before BN, or each stage's output), standardizes each channel (Eq. 16), and adds
lambda * combine_l(mean squared difference at tap l) to the loss (Eq. 17; `fpq.method.distill`,
the Triton kernels per tap with `kernels="triton"`: the combination is outside them, so the
kernels serve every reading). The paper fixes neither the taps, nor how the taps combine, nor a
weight: those are the keys `csd_taps`, `csd_reduce` and `csd_lambda` (docs/specification.md).
"""
from __future__ import annotations

from fpq.method.pieces.base import Key, Piece


class StandardizedDistillation(Piece):
    name, label = "csd", "CSD"
    keys = (
        Key("csd_lambda", float, 1.0, "Weight of the CSD loss (the paper gives none: Eq. 22).", {"minimum": 0},
            tag="l"),
        Key("csd_stats", str, "sample", "Standardize per sample over HxW, or over BxHxW.",
            {"enum": ["sample", "batch"]}),
        Key("csd_eps", float, 1e-5, "Epsilon of the standardization (ours: the paper gives none).",
            {"exclusiveMinimum": 0}),
        Key("csd_reduce", str, "sum", "How the taps' losses combine: sum of per-tap means, their mean over taps "
            "(independent of depth), or elements (Eq. 17 literally: squared norms summed over channels and "
            "positions, mean over the batch).", {"enum": ["sum", "mean", "elements"]}, tag=""),
        Key("csd_taps", str, "convs", "Where CSD reads features: every conv output (before BN), or the output "
            "of each stage (the last block of each width).", {"enum": ["convs", "stages"]}, tag=""),
    )
    teacher = True

    def tap_points(self, quant) -> str:
        return quant.csd_taps

    def make_term(self, quant, kernels: str = "torch"):
        import torch

        from fpq.method.distill import combine, csd_layers, tap_weights

        lam, stats, eps, reduce = quant.csd_lambda, quant.csd_stats, quant.csd_eps, quant.csd_reduce

        def term(out):
            per_tap = csd_layers(out.features, out.teacher_features, stats, eps, kernels)
            weights = tap_weights(out.features, reduce)
            if out.record:  # each tap's share of the term, for the epoch's loss composition
                out.detail[self.name] = torch.stack([v.detach() * (w * lam) for v, w in zip(per_tap, weights)])
            return lam * combine(per_tap, weights)

        return term
