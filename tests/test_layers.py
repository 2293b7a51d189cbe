"""Imports between fpq's packages go one way only (docs/architecture.md states the order).

Read from the source with `ast` (no import runs): every `import fpq.X...` / `from fpq.X... import`
of a module, at top level or inside a function, must name its own package or a layer below it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

FPQ = Path(__file__).resolve().parents[1] / "fpq"

# Top to bottom: a module may import its own layer's package or any layer after it. Layers on
# one line (a tuple) are siblings: neither may import the other.
LAYERS: tuple = (
    "cli",
    "report",
    "plan",
    "run",
    "config",
    ("method", "measure"),
    "quant",
    "kernels",
    "models",
    "io",
    "errors",
)
RANK = {name: i for i, layer in enumerate(LAYERS) for name in (layer if isinstance(layer, tuple) else (layer,))}


def layer_of(module: str) -> str:
    """'fpq.report.tables' -> 'report', 'fpq.config' -> 'config'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def fpq_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of an fpq module in a file, functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("fpq.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "fpq":
                found += [(node.lineno, f"fpq.{a.name}") for a in node.names]
            elif node.module.startswith("fpq."):
                found.append((node.lineno, node.module))
    return found


def module_name(path: Path, root: Path = FPQ) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def violations(files, root: Path = FPQ) -> list[str]:
    bad = []
    for path in files:
        here = layer_of(module_name(path, root))
        if here not in RANK:
            continue
        for line, target in fpq_imports(path):
            there = layer_of(target)
            if there == here:
                continue
            if there not in RANK:
                bad.append(f"{path.name}:{line} imports {target}, which no layer owns")
            elif RANK[there] <= RANK[here]:
                bad.append(f"{module_name(path, root)}:{line} ({here}) imports {target} ({there}): upward or sideways")
    return bad


def test_every_module_of_fpq_belongs_to_a_layer():
    owners = {layer_of(module_name(p)) for p in FPQ.rglob("*.py")} - {""}
    assert owners <= set(RANK), f"modules outside every layer: {sorted(owners - set(RANK))}"


def test_imports_between_packages_go_one_way_only():
    assert violations(sorted(FPQ.rglob("*.py"))) == []


@pytest.mark.parametrize("source, expect_bad", [
    ("from fpq.report.tables import build_tables\n", True),  # run -> report: upward
    ("import fpq.plan.grid\n", True),  # run -> plan: upward
    ("def f():\n    from fpq.cli import main\n", True),  # inside a function counts too
    ("from fpq.config import RunConfig\nfrom fpq.quant import FP_BITS\n", False),
])
def test_the_check_sees_an_upward_import(tmp_path, source, expect_bad):
    fake = tmp_path / "fpq" / "run" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    assert bool(violations([fake], tmp_path / "fpq")) == expect_bad


def test_siblings_may_not_import_each_other(tmp_path):
    fake = tmp_path / "fpq" / "measure" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from fpq.method.registry import METHODS\n")
    assert violations([fake], tmp_path / "fpq")
