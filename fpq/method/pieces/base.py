"""What a method piece is: its config keys, its cost, and its hooks into the model and the loss.

A piece (SFP, CSD, KD, SAM, or a plug-in's) is one file declaring a `Piece` subclass. Its
declarations (`keys`, `cell_key`, `teacher`, `cost`, `passes`) are plain data, read torch-free
by the run config, the cell identity, the workflow schema, the job order and the budget. Its
hooks (`attach`, `make_term`, `step_options`) import torch only when a run calls them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

_JSON_TYPES = {float: "number", int: "integer", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class Key:
    """One `quant.<name>` key of a piece: its type, default, JSON-schema bounds and meaning.

    The bounds (`minimum`, `maximum`, `exclusiveMinimum`, `enum`) are the only statement of what
    is valid: the workflow schema carries them, and the run config checks a value with `problem`.
    `identity`: the key can change a run's result (kept in its tracked identity). `tag`: the key is
    a *reading* of the method, a coordinate of the run's cell: away from its default it is spelled
    in the run id as the tag followed by the value (`csd_lambda` 0.2 with tag "l": "l0.2").

    >>> Key("p", float, 0.1, "a probability", {"minimum": 0, "maximum": 1}).problem(1.5)
    'must be in [0, 1], got 1.5'
    >>> Key("eps", float, 1e-5, "an epsilon", {"exclusiveMinimum": 0}).problem(0.0)
    'must be > 0, got 0.0'
    """

    name: str
    type: type
    default: Any
    description: str
    bounds: dict = field(default_factory=dict)
    identity: bool = True
    tag: str | None = None

    def spell(self, value: Any) -> str:
        """The value as a cell's reading and a run id write it: 0.2 -> '0.2', 'mean' -> 'mean'."""
        return f"{value:g}" if isinstance(value, float) else str(value)

    def schema(self) -> dict:
        """The key's JSON-schema property (type, bounds, default, description)."""
        return {"type": _JSON_TYPES[self.type], **self.bounds, "default": self.default,
                "description": self.description}

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` under the bounds, or None."""
        b = self.bounds
        if "enum" in b and value not in b["enum"]:
            return f"{value!r} is not one of {sorted(b['enum'])}"
        if {"minimum", "maximum"} <= set(b) and not b["minimum"] <= value <= b["maximum"]:
            return f"must be in [{b['minimum']}, {b['maximum']}], got {value}"
        if "minimum" in b and value < b["minimum"]:
            return f"must be >= {b['minimum']}, got {value}"
        if "exclusiveMinimum" in b and value <= b["exclusiveMinimum"]:
            return f"must be > {b['exclusiveMinimum']}, got {value}"
        if "maximum" in b and value > b["maximum"]:
            return f"must be <= {b['maximum']}, got {value}"
        return None


@dataclass
class Outputs:
    """What a step's forward passes produced, for the loss terms: the student's logits and the
    features its taps recorded, the teacher's (None where no piece asked for the teacher). A term
    may leave a detached breakdown of its value in `detail` (CSD: its per-tap losses)."""

    logits: Any
    teacher_logits: Any = None
    features: list = field(default_factory=list)
    teacher_features: list = field(default_factory=list)
    detail: dict = field(default_factory=dict)  # piece name -> a detached vector its term adds up (per tap)
    record: bool = False  # whether the terms should fill `detail` (the epoch's loss composition is recorded)


Term = Callable[[Outputs], Any]  # Outputs -> a scalar loss tensor (already weighted)


class Piece:
    """Base class of a method piece. Subclasses set the declarations and override the hooks they use.

    - `keys`: the piece's `quant.*` keys; a method without the piece ignores them (they drop out
      of its identity).
    - `cell_key`: a key that is a coordinate of the run's `Cell` (`p`, SFP's probability) and
      `neutral` the value at which the piece does nothing (a cell there *is* the method without it).
    - `teacher`: the piece reads the frozen teacher's forward (logits, taps).
    - `cost`: extra work per step relative to the others (job order within a seed);
      `passes`: forward/backward passes per step (SAM: 2; the budget multiplies by it).
    """

    name: str = ""
    label: str = ""
    keys: tuple[Key, ...] = ()
    cell_key: str | None = None
    neutral: Any = None
    teacher: bool = False
    cost: int = 1
    passes: float = 1.0

    def attach(self, student, quant) -> int:
        """Model hook on a calibrated student (activation side, weight side); returns the layers touched."""
        return 0

    def tap_points(self, quant) -> str | None:
        """Which features the piece reads from student and teacher ("convs", "stages"), or None."""
        return None

    def make_term(self, quant, kernels: str = "torch") -> Term | None:
        """The piece's loss term, or None (a piece that only hooks the model or the optimizer)."""
        return None

    def step_options(self, quant) -> dict:
        """Options of the optimizer step (SAM: `{"sam_rho": rho}`)."""
        return {}

    def epoch_stats(self, student) -> dict:
        """What the piece reports of itself after an epoch (a metrics.json history row's keys), and
        counts reset (SFP: the share of its gates that fired)."""
        return {}

    def __repr__(self) -> str:
        return f"<piece {self.name}>"
