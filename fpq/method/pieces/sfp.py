"""SFP, stochastic feature perturbation (Sec. 3.2, Eqs. 9 and 14), as a method piece.

Activation side: every quantized conv with a quantized input gets its own gate
(`fpq.method.perturb`). Its probability p is a coordinate of the run's cell; at p = 0 nothing is
perturbed, so the cell is the same run as the method without SFP.
"""
from __future__ import annotations

from fpq.method.pieces.base import Key, Piece


class StochasticFeatures(Piece):
    name, label = "sfp", "SFP"
    keys = (
        Key("sfp_p", float, 0.1, "SFP probability of the main tables (Eq. 14).", {"minimum": 0, "maximum": 1}),
        Key("sfp_gate", str, "layer", "One Bernoulli draw per layer, or per sample.", {"enum": ["layer", "sample"]}),
        Key("sfp_placement", str, "after", "SFP after or before the activation quantizer.",
            {"enum": ["after", "before"]}),
    )
    cell_key, neutral = "sfp_p", 0.0

    def attach(self, student, quant) -> int:
        from fpq.method.perturb import attach_sfp

        return attach_sfp(student, quant.sfp_p, quant.sfp_gate, quant.sfp_placement)

    def epoch_stats(self, student) -> dict:
        """`sfp_fired`: the share of per-layer gate draws (Eq. 14) that perturbed, over the epoch's
        eager steps (a gate drawn on the device, in a CUDA graph, is not counted: no host sync)."""
        from fpq.method.perturb import StochasticFeaturePerturbation

        gates = [m for m in student.modules() if isinstance(m, StochasticFeaturePerturbation)]
        draws, fired = sum(g.draws for g in gates), sum(g.fired for g in gates)
        for g in gates:
            g.draws = g.fired = 0
        return {"sfp_fired": fired / draws} if draws else {}
