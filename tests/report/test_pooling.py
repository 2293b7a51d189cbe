"""Pooling blocks (fpq.report.pooling): pairs are (block, seed) units, unpaired runs count in the
means, each block's teacher is named, and the block effect is tested where two blocks have pairs."""
import re
from pathlib import Path

import numpy as np
from scipy import stats as sp

from fpq.plan.blocks import make_block, read_blocks
from fpq.report.claims import claims_markdown
from fpq.report.paper import load_reference
from fpq.report.pooling import pool
from fpq.report.stamp import stamp
from fpq.report.tables import write_tables
from tests.plan.test_blocks import sitting

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "config" / "reference_tables.csv"
# block -> {(method, seed): top-1}; the teacher is the fp run of seed 0
BLOCK_A = {("fp", 0): 88.0, ("lsq", 0): 85.0, ("fpq", 0): 86.0, ("lsq", 1): 84.0, ("fpq", 1): 85.5,
           ("lsq", 2): 84.5}  # fpq s2 unfinished: lsq s2 is unpaired
BLOCK_B = {("fp", 0): 87.0, ("lsq", 0): 83.0, ("fpq", 0): 83.2, ("lsq", 1): 85.0, ("fpq", 1): 85.9,
           ("lsq", 2): 84.0, ("fpq", 2): 84.1}


def blocks(tmp_path) -> list:
    for name, numbers, gpu in (("a", BLOCK_A, "NVIDIA H200"), ("b", BLOCK_B, "NVIDIA H100 80GB HBM3")):
        unfinished = tuple(f"resnet18_cifar10_w2a4_{'fpq_p0.1' if m == 'fpq' else m}_s{s}"
                           for m in ("lsq", "fpq") for s in range(3) if (m, s) not in numbers)
        sitting(tmp_path / name, unfinished, top1=lambda c, n=numbers: n.get((c.method, c.seed), 0.0), gpu=gpu)
        make_block(tmp_path / name, tmp_path / "blocks")
    return read_blocks(tmp_path / "blocks")


def row(md: str, section: str, label: str) -> list[str]:
    part = md.split(section)[1]
    line = next(line for line in part.splitlines() if line.startswith(f"| {label}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_pooled_claims_are_the_paired_test_over_every_blocks_whole_pairs(tmp_path):
    collected = pool(blocks(tmp_path))
    assert collected.blocks == ("2026-12-04-h100", "2026-12-04-h200")  # by name: date first, then GPU
    md = claims_markdown(collected, load_reference(REFERENCE))
    units = [(BLOCK_B, s) for s in (0, 1, 2)] + [(BLOCK_A, s) for s in (0, 1)]
    fpq, lsq = (np.array([b[(m, s)] for b, s in units]) for m in ("fpq", "lsq"))
    test = sp.ttest_rel(fpq, lsq)
    low, high = test.confidence_interval(0.95)
    cells = row(md, "## 1. FPQ beats LSQ", "CIFAR-10 ResNet-18 W2A4")
    assert cells[4] == f"[{low:+.2f}, {high:+.2f}]" and float(cells[5]) == float(f"{test.pvalue:.2g}")
    assert cells[6] == "paired, n=5 (1 seed of one side left out)"
    lsq_all = [v for b in (BLOCK_A, BLOCK_B) for (m, _), v in b.items() if m == "lsq"]  # the unpaired one too
    assert cells[2] == f"{np.mean(lsq_all):.2f} ± {np.std(lsq_all, ddof=1):.2f} (n=6)"
    gains = [fpq[:3] - lsq[:3], fpq[3:] - lsq[3:]]
    assert re.search(rf"one-way ANOVA on the per-pair gains, p = {sp.f_oneway(*gains).pvalue:.2g}\b", md)
    assert "| 2026-12-04-h200 | 88.00%          | 2               | 1               |" in md
    assert "| 2026-12-04-h100 | 87.00%          | 3               | 0               |" in md


def test_tables_and_stamps_name_every_block_with_its_teacher(tmp_path):
    collected = pool(blocks(tmp_path))
    line = stamp(collected).line()
    assert "blocks 2026-12-04-h100 (teacher 87.00%), 2026-12-04-h200 (teacher 88.00%)" in line
    write_tables(collected, tmp_path / "tables", REFERENCE)
    table2 = (tmp_path / "tables" / "table2_ablation.md").read_text()
    assert "2026-12-04-h200" in table2 and "2026-12-04-h100" in table2
    assert re.search(r"\| LSQ +\| +84\.25 ± 0\.76 \| +6 \|", table2)  # both blocks' runs, the unpaired one too
    one = pool(read_blocks(tmp_path / "blocks")[1:])
    assert "2026-12-04-h100" not in stamp(one).line() and "fewer than two blocks have pairs" in claims_markdown(one)
