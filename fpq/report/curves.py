"""Training curves: test top-1 after each QAT epoch, mean ± std band over seeds per method, a panel
per (dataset, arch, bits) cell of the chosen grids (the ablation grid unless asked for more).

Read from the `history` of each run's metrics.json, through the run index; the data function
`curve_series` is what the tests check, the plotting draws only what it returns.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fpq.method.registry import is_float
from fpq.report.plots import band, band_figure, save
from fpq.report.results import RUN_KEY, Collected
from fpq.run.cell import Cell, method_label

CURVE_GRIDS = ("ablation",)
SETTING = ["dataset", "arch", "w_bits", "a_bits"]


def _top1_by_epoch(history: list[dict]) -> pd.Series:
    points = {int(h["epoch"]): float(h["test_acc"]) for h in history if "test_acc" in h}
    return pd.Series(points, dtype=float).sort_index()


def _rank(key: tuple) -> tuple:
    dataset, arch, w, a, method, p = key
    return Cell(dataset, arch, method, int(w), int(a), None if pd.isna(p) else p).sort_key()


def curve_series(collected: Collected, grids: tuple[str, ...] = CURVE_GRIDS) -> dict[tuple, dict[tuple, dict]]:
    """{(dataset, arch, w_bits, a_bits): {(method, p): band}} over the ok runs of the grids' QAT cells
    (p None for a method without SFP), methods in the paper's order."""
    entries = collected.entries
    mine = entries[entries.grid.isin(grids) & ~entries.method.map(is_float).astype(bool)]
    mine = mine.drop(columns="grid").drop_duplicates(subset=RUN_KEY)
    ok = mine[(mine.status == "ok") & mine.history.map(bool).astype(bool)]
    groups = dict(tuple(ok.groupby(SETTING + ["method", "p"], dropna=False)))
    out: dict[tuple, dict[tuple, dict]] = {}
    for key in sorted(groups, key=_rank):
        dataset, arch, w, a, method, p = key
        line = band([_top1_by_epoch(h) for h in groups[key].history])
        out.setdefault((dataset, arch, int(w), int(a)), {})[(method, None if pd.isna(p) else float(p))] = line
    return out


def curves_plot(collected: Collected, grids: tuple[str, ...] = CURVE_GRIDS):
    def lines(panel: dict) -> list:
        return [(method_label(m) + (f" (p={p:g})" if p is not None else ""), m, line) for (m, p), line in panel.items()]

    which = ", ".join(grids)
    return band_figure(curve_series(collected, grids), lines, "test top-1 (%)", "lower right",
                       f"Test top-1 after each QAT epoch, cells of the {which} grid\n"
                       "Line: mean over seeds (n in each legend); band: ± 1 std over them (one epoch: a point, a bar).",
                       f"no training histories of the {which} grid in the run index", collected)


def curves_figure(collected: Collected, out: Path, grids: tuple[str, ...] = CURVE_GRIDS) -> list[Path]:
    return save(curves_plot(collected, grids), out, "training_curves")
