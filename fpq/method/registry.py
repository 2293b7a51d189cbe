"""Registry of training methods: a name, a quantizer and a tuple of pieces, its label and its
place in the paper's tables (the registration order).

What a method does comes from its pieces (`fpq.method.pieces`): nothing else in fpq branches on a
method's name or on which pieces it has. A new method is one `register_method(MethodSpec(...))`
here or in a plug-in file; a new piece is one `Piece` file (`register_piece`). Plug-in files are
named by `FPQ_PLUGINS` (module names or .py paths, separated by commas), imported once, when this
registry is first imported, so that every process of a run (the CLI, each Snakemake job) sees
them. Torch-free: `fpq.config` reads it to validate a name and to build the `quant` keys.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from fpq.method.pieces import PIECES, Piece

PLUGINS_ENV = "FPQ_PLUGINS"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    quantizer: str | None  # fake-quantizer registry name; None trains a float model
    pieces: tuple[str, ...] = ()  # piece names (fpq.method.pieces), in the order their terms add up
    label: str = ""  # as the paper prints it (tables, figures)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pieces", tuple(self.pieces))
        unknown = [p for p in self.pieces if p not in PIECES]
        if unknown:
            raise ValueError(f"method {self.name!r}: pieces {unknown} are not registered ({sorted(PIECES)})")

    @property
    def parts(self) -> list[Piece]:
        return [PIECES[p] for p in self.pieces]

    @property
    def uses_teacher_forward(self) -> bool:
        return any(p.teacher for p in self.parts)

    @property
    def cell_key(self) -> str | None:
        """The quant key that is a coordinate of this method's cells (SFP's p), or None."""
        keys = [p.cell_key for p in self.parts if p.cell_key]
        return keys[0] if keys else None

    @property
    def cost(self) -> int:
        return sum(p.cost for p in self.parts)

    @property
    def passes(self) -> float:
        out = 1.0
        for p in self.parts:
            out *= p.passes
        return out

    def without_cell_key(self) -> tuple:
        """What this method is where its cell key is neutral: (quantizer, the other pieces)."""
        return (self.quantizer, tuple(p.name for p in self.parts if not p.cell_key))


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
    MethodSpec("kd", "lsq", ("kd",), label="KD", description="LSQ + Hinton KD from the FP teacher"),
    MethodSpec("lsq+sam", "lsq", ("sam",), label="LSQ+SAM", description="LSQ + SAM (Table 1)"),
    MethodSpec("lsq+sfp", "lsq", ("sfp",), label="LSQ+SFP", description="LSQ + SFP (Table 2)"),
    MethodSpec("lsq+csd", "lsq", ("csd",), label="LSQ+CSD", description="LSQ + CSD (Table 2)"),
    MethodSpec("fpq", "lsq", ("sfp", "csd"), label="FPQ", description="FPQ = LSQ + SFP + CSD"),
):
    register_method(_spec)


def method_rank(name: str) -> tuple:
    """Sort key: registration (the paper's) order; an unknown name last, by name."""
    order = list(METHODS)
    return (order.index(name), "") if name in METHODS else (len(order), name)


def reading_keys(name: str) -> list:
    """The reading keys (`Key.tag` set) of `name`'s pieces: coordinates of its cells beside p."""
    return [k for piece in METHODS[name].parts for k in piece.keys if k.tag is not None]


def reading_of(name: str, quant) -> str:
    """The reading of `name` under `quant` values (a mapping): its reading keys away from their
    defaults, 'csd_lambda=0.2,csd_reduce=mean'; '' at the defaults (the suite's own reading)."""
    values = {k.name: (k, k.type(quant[k.name])) for k in reading_keys(name) if k.name in quant}
    return ",".join(f"{n}={k.spell(v)}" for n, (k, v) in values.items() if v != k.default)


def reading_values(name: str, reading: str) -> dict:
    """Every reading key of `name` with its value under `reading` (the defaults where it names none);
    a key the method does not read, or a bad spelling, raises ValueError."""
    keys = {k.name: k for k in reading_keys(name)}
    values = {k: key.default for k, key in keys.items()}
    for item in filter(None, reading.split(",")):
        key, _, text = item.partition("=")
        if key not in keys:
            raise ValueError(f"reading {reading!r}: {key!r} is not a reading key of method {name!r} ({sorted(keys)})")
        values[key] = keys[key].type(text)
    return values


def reading_tag(name: str, reading: str) -> str:
    """A reading as a run id spells it: 'csd_lambda=0.2,csd_reduce=mean' -> 'csd-l0.2-mean'."""
    if not reading:
        return ""
    values = reading_values(name, reading)
    parts = [(piece.name, f"{k.tag}{k.spell(values[k.name])}") for piece in METHODS[name].parts for k in piece.keys
             if k.tag is not None and values[k.name] != k.default]
    pieces = dict.fromkeys(p for p, _ in parts)
    return "_".join(p + "".join(f"-{t}" for q, t in parts if q == p) for p in pieces)


def is_float(name: str) -> bool:
    """Whether `name` trains a float model (the FP teacher): a method without a quantizer."""
    return name in METHODS and METHODS[name].quantizer is None


def method_p(name: str, main_p: float | None) -> float | None:
    """The p of `name`'s cell in a main table: `main_p` for a method with a cell key, else None."""
    return main_p if METHODS[name].cell_key else None


def load_plugins(names: str) -> list[str]:
    """Import each plug-in (a module name, or a path to a .py file) of a comma-separated list."""
    loaded = []
    for item in filter(None, (n.strip() for n in names.split(","))):
        if item.endswith(".py"):
            path = Path(item).resolve()
            if not path.is_file():
                raise ImportError(f"{PLUGINS_ENV}: plug-in file {item} does not exist")
            module = f"fpq_plugin_{path.stem}"
            if module not in sys.modules:
                spec = importlib.util.spec_from_file_location(module, path)
                sys.modules[module] = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(sys.modules[module])
        else:
            importlib.import_module(item)
        loaded.append(item)
    return loaded


PLUGINS = load_plugins(os.environ.get(PLUGINS_ENV, ""))
