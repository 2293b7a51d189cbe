"""Sharpness-aware minimization (Table 1's LSQ+SAM), as a method piece: an optimizer-step option,
two forward/backward passes per step (`fpq.run.step.sam_step`)."""
from __future__ import annotations

from fpq.method.pieces.base import Key, Piece


class SharpnessAware(Piece):
    name, label = "sam", "SAM"
    keys = (Key("sam_rho", float, 0.05, "SAM neighbourhood radius.", {"exclusiveMinimum": 0}),)
    cost, passes = 3, 2.0

    def step_options(self, quant) -> dict:
        return {"sam_rho": quant.sam_rho}
