"""The schedule study (config `qat_schedule`): FPQ's paired gain over LSQ against the QAT epochs.

Each point of the study keeps its blocks in `<blocks>/q<epochs>/`; a point is pooled as any study
of sittings (fpq.report.pooling: pairs are (block, seed) units) and compared FPQ − LSQ on top-1,
paired, with its 95% CI. The epochs of a point are read from its QAT runs' own results, not from
the folder's name. The claim line asks whether FPQ's edge appears (the first point whose CI lies
above 0) and whether it grows as the schedule lengthens: the least-squares slope of every pair's
gain on log2(QAT epochs), per doubling, with its 95% CI and p (a t-test on the slope).
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from fpq.errors import DataError
from fpq.io import write_text
from fpq.plan.blocks import read_blocks
from fpq.report.formats import DASH, TOP1, pvalue
from fpq.report.plots import plt, save
from fpq.report.pooling import PAIR, pair_values, pool
from fpq.report.results import Collected, main_cells, settings
from fpq.report.stamp import stamp
from fpq.report.stats import Comparison, compare_seeds, pair_gains, verdict_text


@dataclass(frozen=True)
class Point:
    epochs: int
    collected: Collected
    comparison: Comparison
    gains: list[float]  # every pair's FPQ − LSQ


def _epochs(collected: Collected, where: Path) -> int:
    qat = collected.runs[(collected.runs.stage == "qat") & (collected.runs.status != "missing")]
    found = sorted({m.get("epochs") for m in qat.made if isinstance(m, dict) and m.get("epochs")})
    if len(found) != 1:
        raise DataError(f"{where}: a schedule point's QAT runs must share their epochs, found {found or 'none'}")
    return int(found[0])


def read_points(root: str | Path) -> list[Point]:
    """Every point under `root` with at least one block, by QAT epochs."""
    points = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []:
        blocks = read_blocks(folder)
        if not blocks:
            continue
        collected = pool(blocks)
        frame = main_cells(collected)
        cells = settings(frame[frame.method.isin(PAIR)])
        if len(cells) != 1:
            raise DataError(f"{folder}: a schedule point compares LSQ and FPQ in one cell, found {len(cells)}")
        fpq, lsq = pair_values(frame, collected.main_p, cells[0])
        points.append(Point(_epochs(collected, folder), collected, compare_seeds(fpq, lsq, bound=TOP1.bound),
                            [float(g) for g in pair_gains(fpq, lsq)]))
    if not points:
        raise DataError(f"{root}: no schedule point with a block (points are <blocks>/q<epochs>/<block>/)")
    return sorted(points, key=lambda p: p.epochs)


def trend(points: list[Point]) -> tuple[float, float, float, float]:
    """(slope per doubling of QAT epochs, CI low, CI high, p) of every pair's gain on log2(epochs);
    NaNs where fewer than 3 pairs or fewer than 2 points have pairs."""
    x = [math.log2(p.epochs) for p in points for _ in p.gains]
    y = [g for p in points for g in p.gains]
    if len(y) < 3 or len(set(x)) < 2:
        return (math.nan,) * 4
    fit = stats.linregress(x, y)
    half = float(stats.t.ppf(0.975, len(y) - 2)) * fit.stderr
    return float(fit.slope), fit.slope - half, fit.slope + half, float(fit.pvalue)


def claim_line(points: list[Point]) -> str:
    """Does FPQ's edge appear, or grow, as the schedule lengthens toward the paper's 200 epochs?"""
    holds = [p.epochs for p in points if p.comparison.verdict == "holds"]
    appears = (f"FPQ's edge appears at {holds[0]} QAT epochs (the first point whose 95% CI lies above 0)" if holds
               else "FPQ's edge appears at no point (no CI lies above 0)")
    slope, low, high, p = trend(points)
    if math.isnan(slope):
        return f"{appears}; whether it grows is undetermined (fewer than 3 pairs over 2 points)."
    grows = "grows" if low > 0 else "shrinks" if high < 0 else "neither grows nor shrinks detectably"
    return (f"{appears}; as the schedule lengthens it {grows}: {TOP1.diff(slope)} points per doubling of QAT "
            f"epochs, 95% CI [{TOP1.diff(low)}, {TOP1.diff(high)}], p = {pvalue(p)} (every pair's gain on "
            f"log2 epochs; the paper's schedule is 200 epochs).")


def schedule_markdown(points: list[Point]) -> str:
    rows = [[str(p.epochs), f"{len(p.collected.blocks)}", str(len(p.gains)), TOP1.diff(p.comparison.gain),
             DASH if math.isnan(p.comparison.low) else f"[{TOP1.diff(p.comparison.low)}, {TOP1.diff(p.comparison.high)}]",
             pvalue(p.comparison.p_value), verdict_text(p.comparison)] for p in points]
    table = pd.DataFrame(rows, columns=["QAT epochs", "Blocks", "Pairs", "FPQ − LSQ", "95% CI", "p-value",
                                        "Verdict"]).to_markdown(index=False, disable_numparse=True)
    stamps = [f"- {p.epochs} QAT epochs: {stamp(p.collected).line()}" for p in points]
    return "\n".join(["# The schedule study: FPQ − LSQ top-1 against QAT epochs", "", claim_line(points), "",
                      "Each point pools its blocks; pairs are (block, seed) units with both methods in one block "
                      "(paired t-test, 95% CI).", "", table, "", *stamps, ""])


def schedule_figure(points: list[Point], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    xs = [p.epochs for p in points]
    gains = [p.comparison.gain for p in points]
    low = [g - p.comparison.low if not math.isnan(p.comparison.low) else 0.0 for g, p in zip(gains, points)]
    high = [p.comparison.high - g if not math.isnan(p.comparison.high) else 0.0 for g, p in zip(gains, points)]
    ax.errorbar(xs, gains, yerr=[low, high], fmt="o-", capsize=3)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("QAT epochs")
    ax.set_ylabel("FPQ − LSQ top-1 (points)")
    ax.set_title("Paired gain with its 95% CI (none: fewer than 2 pairs)", fontsize=9)
    made = "; ".join(f"{p.epochs} epochs: {stamp(p.collected).blocks}" for p in points)
    fig.text(0.5, 0.0, textwrap.fill(made, 110), ha="center", va="top", fontsize=6, color="dimgray")
    return save(fig, out, "schedule_gain")


def build_schedule(root: str | Path, out: str | Path) -> list[Path]:
    points = read_points(root)
    out = Path(out)
    return [write_text(out / "schedule.md", schedule_markdown(points))] + schedule_figure(points, out)
