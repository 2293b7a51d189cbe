"""A pair whose two runs of one seed took different step paths (CUDA graph or eager, kernels,
precision) is flagged § in the tables and the claims, with the path of either side."""
from __future__ import annotations

import json

from pathlib import Path

from fpq.plan.table_specs import TABLES
from fpq.report.claims import claims_markdown
from fpq.report.paper import load_reference
from fpq.report.results import collect, step_path
from fpq.report.tables import build_table
from tests.fake_results import workflow_config, write_results

REF = load_reference(Path(__file__).resolve().parents[2] / "config" / "reference_tables.csv")

GRAPH = {"cuda_graph": {"train": {"captured": True}}, "student_autocast": "bf16"}
EAGER = {"cuda_graph": False, "student_autocast": "bf16"}


def _results(tmp_path, fpq_s0_path: dict):
    config = workflow_config(tmp_path / "results", {"ablation": {"datasets": ["cifar10"], "archs": ["resnet18"],
                                                                 "bits": ["w2a4"], "methods": ["lsq", "fpq"]}})
    index = write_results(config, lambda c: 80.0 + c.seed + (c.method == "fpq"))
    for rid in index.runs:
        path = tmp_path / "results" / "runs" / rid / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["precision"] = fpq_s0_path if rid == "resnet18_cifar10_w2a4_fpq_p0.1_s0" else GRAPH
        path.write_text(json.dumps(metrics))
    return collect(tmp_path / "results", index)


def test_a_pair_on_two_step_paths_is_flagged_with_each_sides_path(tmp_path):
    collected = _results(tmp_path, EAGER)
    table = build_table(next(s for s in TABLES if s.grid == "ablation"), collected.entries, REF, collected.main_p)
    assert [r.flags for r in table.rows] == ["§", "§"]
    assert table.mismatches == ("ResNet-18 W2A4, s0 (LSQ: CUDA graph, torch kernels, bf16; "
                                "FPQ: eager, torch kernels, bf16)",)
    claims = claims_markdown(collected)
    first = claims.split("## 1. ")[1].split("\n## ")[0]
    assert "| CIFAR-10 ResNet-18 W2A4 § |" in first
    assert "§ Step paths differ within a pair" in first and "s0 (FPQ: eager, torch kernels, bf16; LSQ: CUDA graph" in first


def test_pairs_on_one_path_carry_no_flag(tmp_path):
    collected = _results(tmp_path, GRAPH)
    table = build_table(next(s for s in TABLES if s.grid == "ablation"), collected.entries, REF, collected.main_p)
    assert [r.flags for r in table.rows] == ["", ""] and table.mismatches == ()
    assert "§" not in claims_markdown(collected)
    assert step_path({}) == "" and step_path({"precision": EAGER}) == "eager, torch kernels, bf16"
