"""The schedule study (fpq.report.schedule): FPQ − LSQ per point of QAT epochs, from each point's
blocks, against scipy; the claim line says where the edge appears and whether it grows."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sp

from fpq.errors import DataError
from fpq.plan.blocks import make_block
from fpq.report.schedule import build_schedule, read_points
from tests.plan.test_blocks import sitting

GAINS = {5: [-0.5, 0.5, 0.2], 10: [0.8, 1.0, 1.2], 20: [1.8, 2.0, 2.3]}  # FPQ − LSQ by seed


def points(root: Path, tmp: Path, gains=GAINS) -> Path:
    for epochs, by_seed in gains.items():
        def top1(cell, by_seed=by_seed):
            return 80.0 + cell.seed + (by_seed[cell.seed] if cell.method == "fpq" else 0.0)

        sitting(tmp / f"pack{epochs}", top1=top1, qat={"epochs": epochs, "lr": 0.01})
        make_block(tmp / f"pack{epochs}", root / f"q{epochs}")
    return root


def test_each_point_is_its_paired_test_and_the_trend_is_the_slope_on_log_epochs(tmp_path):
    root = points(tmp_path / "schedule", tmp_path)
    found = read_points(root)
    assert [p.epochs for p in found] == [5, 10, 20]
    for point in found:
        g = np.array(GAINS[point.epochs])
        low, high = sp.ttest_1samp(g, 0.0).confidence_interval(0.95)
        assert math.isclose(point.comparison.low, low) and math.isclose(point.comparison.high, high)
    paths = build_schedule(root, tmp_path / "out")
    assert {p.name for p in paths} == {"schedule.md", "schedule_gain.png", "schedule_gain.pdf"}
    md = (tmp_path / "out" / "schedule.md").read_text()
    fit = sp.linregress([math.log2(e) for e in GAINS for _ in GAINS[e]], [g for e in GAINS for g in GAINS[e]])
    assert "FPQ's edge appears at 10 QAT epochs" in md and "it grows:" in md
    assert f"{fit.slope:+.2f} points per doubling" in md and f"p = {fit.pvalue:#.2g}" in md
    assert re.search(r"\| 5 +\| 1 +\| 3 +\| \+0\.07 ", md) and "2026-12-04-h200" in md


def test_an_edge_that_never_shows_and_bad_folders_say_so(tmp_path):
    flat = {5: [0.5, -0.5, 0.1], 10: [-0.4, 0.6, 0.0]}
    root = points(tmp_path / "flat", tmp_path, flat)
    build_schedule(root, tmp_path / "o")
    assert "appears at no point" in (tmp_path / "o" / "schedule.md").read_text()
    with pytest.raises(DataError, match="no schedule point with a block"):
        read_points(tmp_path / "none")
    make_block(tmp_path / "pack5", root / "q10")  # a 5-epoch block among the 10-epoch point's
    with pytest.raises(DataError, match="must share their epochs, found \\[5, 10\\]"):
        read_points(root)
