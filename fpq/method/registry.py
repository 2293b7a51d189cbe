"""Registry of training methods: which quantizer and which loss terms each one uses.

The training loop reads these flags; it never branches on a method's name.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    name: str
    quantizer: str | None  # fake-quantizer registry name; None trains a float model
    sfp: bool = False  # stochastic feature perturbation (Sec. 3.2, Eqs. 9 and 14)
    csd: bool = False  # channel-wise standardization distillation (Eqs. 15-17)
    kd: bool = False  # Hinton logit distillation from the FP teacher
    sam: bool = False  # sharpness-aware minimization, two passes per step
    label: str = ""  # as the paper prints it (tables, figures)
    description: str = ""

    @property
    def uses_teacher_forward(self) -> bool:
        return self.csd or self.kd


METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"method {spec.name!r} is already registered")
    METHODS[spec.name] = spec
    return spec


for _spec in (
    MethodSpec("fp", None, label="FP", description="full-precision teacher"),
    MethodSpec("lsq", "lsq", label="LSQ", description="LSQ, fixed offset (the paper's base)"),
    MethodSpec("lsq+", "lsq+", label="LSQ+", description="LSQ with a learnable offset"),
    MethodSpec("pact", "pact", label="PACT", description="PACT learned activation clipping"),
    MethodSpec("kd", "lsq", kd=True, label="KD", description="LSQ + Hinton KD from the FP teacher"),
    MethodSpec("lsq+sam", "lsq", sam=True, label="LSQ+SAM", description="LSQ + SAM (Table 1)"),
    MethodSpec("lsq+sfp", "lsq", sfp=True, label="LSQ+SFP", description="LSQ + SFP (Table 2)"),
    MethodSpec("lsq+csd", "lsq", csd=True, label="LSQ+CSD", description="LSQ + CSD (Table 2)"),
    MethodSpec("fpq", "lsq", sfp=True, csd=True, label="FPQ", description="FPQ = LSQ + SFP + CSD"),
):
    register_method(_spec)
