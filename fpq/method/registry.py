"""Registry of training methods: which quantizer and which loss terms each one uses, its label
and its place in the paper's tables (the registration order).

The training loop reads these flags; it never branches on a method's name. A new method is one
`register_method(MethodSpec(...))` here (or in a plug-in module) when it combines the existing
pieces, plus a loss term in `distill.py`/`objective.py` when it brings a new one: the workflow
schema's method enums, the tables' row order and the labels all come from this registry.
Torch-free: `fpq.config` reads it to validate a name.
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


# Registration order is the paper's order of rows (Tables 1-5); a method registered later comes after.
for _spec in (
    MethodSpec("fp", None, label="FP", description="full-precision teacher"),
    MethodSpec("pact", "pact", label="PACT", description="PACT learned activation clipping"),
    MethodSpec("lsq", "lsq", label="LSQ", description="LSQ, fixed offset (the paper's base)"),
    MethodSpec("lsq+", "lsq+", label="LSQ+", description="LSQ with a learnable offset"),
    MethodSpec("kd", "lsq", kd=True, label="KD", description="LSQ + Hinton KD from the FP teacher"),
    MethodSpec("lsq+sam", "lsq", sam=True, label="LSQ+SAM", description="LSQ + SAM (Table 1)"),
    MethodSpec("lsq+sfp", "lsq", sfp=True, label="LSQ+SFP", description="LSQ + SFP (Table 2)"),
    MethodSpec("lsq+csd", "lsq", csd=True, label="LSQ+CSD", description="LSQ + CSD (Table 2)"),
    MethodSpec("fpq", "lsq", sfp=True, csd=True, label="FPQ", description="FPQ = LSQ + SFP + CSD"),
):
    register_method(_spec)


def method_rank(name: str) -> tuple:
    """Sort key: registration (the paper's) order; an unknown name last, by name."""
    order = list(METHODS)
    return (order.index(name), "") if name in METHODS else (len(order), name)
