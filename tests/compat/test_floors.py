"""pyproject.toml's version ranges are what ran: each package's lower bound is the lowest version
of a passing row of docs/compat.md, its upper bound the highest; the GPU row is what the
reference's result files recorded, and the lowest-direct row is the script's."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.compat import record

REPO = Path(__file__).resolve().parents[2]
ROWS = record.read_rows((REPO / "docs" / "compat.md").read_text())


def ranges() -> dict[str, tuple[Version | None, Version | None]]:
    """{package: (>= bound, <= bound)} of pyproject.toml's dependencies."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in map(Requirement, deps):
        bounds = {s.operator: Version(s.version) for s in dep.specifier}
        out[dep.name] = (bounds.get(">="), bounds.get("<="))
    return out


@pytest.mark.parametrize("package", record.PACKAGES)
def test_each_range_runs_from_the_lowest_to_the_highest_version_that_passed(package):
    seen = [Version(r[package]) for r in ROWS if r["passed"] == "yes" and r[package] != "—"]
    assert seen, f"no passing row of docs/compat.md names {package}"
    assert ranges()[package] == (min(seen), max(seen)), f"{package}: pyproject {ranges()[package]}, ran {min(seen)}..{max(seen)}"


def test_the_table_has_the_three_rows_and_the_lowest_direct_one_ran_the_quick_tier():
    settings = {r["setting"]: r for r in ROWS}
    assert {"lowest-direct", "pinned (CI)", "GPU device"} <= set(settings)
    lowest = settings["lowest-direct"]
    assert lowest["what ran"].startswith("quick tier") and record.passed(lowest["result"]) == (lowest["passed"] == "yes")
    assert all(Version(lowest[p]) <= Version(settings["pinned (CI)"][p]) for p in record.PACKAGES)


def test_the_gpu_row_is_what_the_reference_runs_recorded():
    packages = {json.dumps(json.loads(p.read_text()).get("packages"), sort_keys=True)
                for p in (REPO / "reference" / "blocks").rglob("metrics.json")}
    recorded = [json.loads(p) for p in packages if p != "null"]
    gpu = next(r for r in ROWS if r["setting"] == "GPU device")
    assert any(all(rec.get(k) == gpu[k] for k in ("torch", "torchvision", "numpy", "pandas", "snakemake"))
               and rec.get("python") == gpu["python"] for rec in recorded), recorded


def test_a_row_is_read_back_as_written_and_replaced_by_its_setting():
    text = "# t\n\nintro\n"
    once = record.replace_row(text, record.row("x", "3 passed, 1 skipped in 2.0s"))
    twice = record.replace_row(once, record.row("x", "1 failed, 2 passed in 2.0s"))
    (row,) = record.read_rows(twice)
    assert row["passed"] == "no" and row["result"] == "1 failed, 2 passed in 2.0s" and twice.startswith(text)
    assert record.summary("...\n==== 689 passed, 1 skipped in 281.3s (0:04:41) ====\n") == \
        "689 passed, 1 skipped in 281.3s (0:04:41)"
    assert not record.passed("3 passed, 2 errors in 1s") and not record.passed("")
