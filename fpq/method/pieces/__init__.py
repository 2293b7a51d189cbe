"""Method pieces (SFP, CSD, KD, SAM, and any plug-in's) and their registry.

A method (`fpq.method.registry`) is a quantizer and a tuple of piece names. Everything that
depends on what a method is made of reads its pieces: the run config's `quant` keys and the
run's identity (`keys`), the cell's `p` (`cell_key`), the twin of a cell at a neutral value, the
job order and the budget (`cost`, `passes`, `teacher`), the student's hooks (`attach`), the loss
terms (`make_term`) and the optimizer step (`step_options`). Torch-free: the pieces' torch code
is imported by their hooks.
"""
from __future__ import annotations

from fpq.method.pieces.base import Key, Outputs, Piece, Term

PIECES: dict[str, Piece] = {}


def register_piece(piece: Piece | type) -> Piece:
    """Register a piece (an instance, or a class made into one); its keys must not clash with another's."""
    piece = piece() if isinstance(piece, type) else piece
    if not piece.name or piece.name in PIECES:
        raise ValueError(f"piece {piece.name!r} is unnamed or already registered")
    taken = {k.name: p.name for p in PIECES.values() for k in p.keys}
    clash = [k.name for k in piece.keys if k.name in taken]
    if clash:
        raise ValueError(f"piece {piece.name!r}: keys {clash} belong to piece {taken[clash[0]]!r}")
    PIECES[piece.name] = piece
    return piece


def piece_keys() -> list[Key]:
    """Every registered piece's keys, in registration order."""
    return [k for p in PIECES.values() for k in p.keys]


def _register_builtins() -> None:
    from fpq.method.pieces.csd import StandardizedDistillation
    from fpq.method.pieces.kd import LogitDistillation
    from fpq.method.pieces.sam import SharpnessAware
    from fpq.method.pieces.sfp import StochasticFeatures

    for cls in (StochasticFeatures, StandardizedDistillation, LogitDistillation, SharpnessAware):
        register_piece(cls)


_register_builtins()

__all__ = ["PIECES", "Key", "Outputs", "Piece", "Term", "piece_keys", "register_piece"]
