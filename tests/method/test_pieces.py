"""Method pieces: the registry's declarations, and that nothing outside a piece's own file branches on
a method's name or on which pieces a method has (docs/architecture.md, "Adding things")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fpq.method.pieces import PIECES, Key, Piece, piece_keys, register_piece
from fpq.method.registry import METHODS, MethodSpec

FPQ = Path(__file__).resolve().parents[2] / "fpq"
PIECE_FILES = FPQ / "method" / "pieces"


def _strings(node: ast.AST) -> list[str]:
    """The string constants of a comparison operand (a tuple, list or set of them included)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def name_tests(source: str) -> list[str]:
    """Comparisons with a method's or a piece's name, and reads of a piece flag (`spec.sfp`).

    >>> name_tests('if method == "fpq": pass')
    ["1: compares with 'fpq'"]
    >>> name_tests('x = spec.csd or "sfp" in spec.pieces')
    ["1: reads '.csd'", "1: compares with 'sfp'"]
    >>> name_tests('if stage == "qat" and row.p is None: pass')
    []
    """
    names = set(METHODS) | set(PIECES)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += [f"{node.lineno}: compares with {s!r}" for s in _strings(operand) if s in names]
        elif isinstance(node, ast.Attribute) and node.attr in PIECES:
            found.append(f"{node.lineno}: reads '.{node.attr}'")
    return sorted(found, key=lambda t: (int(t.split(":")[0]), "reads" not in t))


def test_no_module_outside_a_piece_file_tests_a_method_name_or_a_piece_flag():
    offenders = {str(path.relative_to(FPQ)): hits for path in sorted(FPQ.rglob("*.py"))
                 if PIECE_FILES not in path.parents and (hits := name_tests(path.read_text()))}
    assert offenders == {}


def test_the_check_finds_what_it_looks_for():
    assert name_tests('ok = frame[frame.method != "fp"]') == ["1: compares with 'fp'"]
    assert name_tests('if m in ("lsq", "other"): pass') == ["1: compares with 'lsq'"]


def test_every_method_is_a_quantizer_and_registered_pieces():
    for spec in METHODS.values():
        assert all(p in PIECES for p in spec.pieces), spec.name
    assert METHODS["fpq"].pieces == ("sfp", "csd") and METHODS["fpq"].cell_key == "sfp_p"
    assert METHODS["lsq+sam"].passes == 2.0 and METHODS["lsq"].passes == 1.0
    assert METHODS["kd"].uses_teacher_forward and not METHODS["lsq+sfp"].uses_teacher_forward
    with pytest.raises(ValueError, match="not registered"):
        MethodSpec("bad", "lsq", ("nope",))


def test_a_piece_key_belongs_to_one_piece_and_keys_are_named_once():
    names = [k.name for k in piece_keys()]
    assert len(names) == len(set(names))

    class Clash(Piece):
        name, keys = "clash", (Key("sfp_p", float, 0.1, "taken"),)

    with pytest.raises(ValueError, match="belong to piece 'sfp'"):
        register_piece(Clash)
    assert "clash" not in PIECES


def test_the_specification_lists_every_piece_key_with_its_default_and_marks_the_silent_readings():
    spec = (FPQ.parent / "docs" / "specification.md").read_text()
    table = {line.split("|")[1].strip(): line for line in spec.splitlines() if line.startswith("| `quant.")}
    for key in piece_keys():
        row = table[f"`quant.{key.name}`"]
        shown = row.split("|")[2].strip().strip("`")
        assert (float(shown) if key.type is float else shown) == key.default, key.name
        if key.tag is not None:  # a reading of the method: the paper is silent on it
            assert "*silent*" in row, key.name
    assert "The paper gives no $\\epsilon$" in spec
