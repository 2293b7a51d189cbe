"""A study pooled from its blocks (fpq.plan.blocks): one Collected over every block's runs.

Each block is read through its own run index, and its rows carry the block's name; a run the time
box left unfinished in a block is dropped work, not a missing run. The sitting in progress, if
any, joins as the block "this sitting" with its missing runs listed. Tables and figures then read
every block's runs (means over all of them, the unpaired included); a comparison pairs the runs
of one (block, seed) unit (`fpq.report.results.values`), as runs pair only on their own teacher.

The claims page gets a section on the blocks: each block's teacher and its top-1, its pairs and
unpaired runs, and, where two or more blocks have pairs, a test of whether the gain differs between
blocks (one-way ANOVA on the per-pair gains, grouped by block): a block effect is a finding, not
an error.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy import stats

from fpq.method.registry import method_p
from fpq.plan.blocks import Block
from fpq.plan.index import RunIndex
from fpq.report.formats import TOP1, pvalue
from fpq.report.results import Collected, collect, main_cells, select, settings, unit_block, values
from fpq.report.stats import pair_gains
from fpq.run.cell import DATASET_LABELS, arch_label, bits_label

CURRENT = "this sitting"
PAIR = ("fpq", "lsq")  # the study's headline comparison, whose pairs each block is counted by


def _tagged(collected: Collected, block: str, keep_missing: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs, entries = collected.runs.copy(), collected.entries.copy()
    runs["block"], entries["block"] = block, block
    if not keep_missing:
        runs, entries = runs[runs.status != "missing"], entries[entries.status != "missing"]
    return runs, entries


def pool(blocks: list[Block], current: tuple[Path, RunIndex] | None = None, metric: str = "final") -> Collected:
    """Every block's runs, then the sitting in progress (`current`: its results folder and index)."""
    parts, unreadable, names = [], [], []
    for block in blocks:
        c = collect(block.results, block.index, metric)
        parts.append(_tagged(c, block.name, keep_missing=False))
        unreadable += c.unreadable
        names.append(block.name)
    if current is not None:
        c = collect(*current, metric)
        parts.append(_tagged(c, CURRENT, keep_missing=True))
        unreadable += c.unreadable
        names.append(CURRENT)
    if not parts:
        raise ValueError("nothing to pool: no block and no sitting in progress")
    first = current[1] if current is not None else blocks[0].index
    runs = pd.concat([r for r, _ in parts], ignore_index=True)
    entries = pd.concat([e for _, e in parts], ignore_index=True)
    return Collected(runs, entries, unreadable, first.main_p, first.name, tuple(names), first.main_readings)


def teachers(collected: Collected, block: str) -> list[float]:
    runs = collected.runs
    mine = runs[(runs.block == block) & (runs.stage == "teacher") & (runs.status == "ok")]
    return [float(v) for v in mine.top1]


def percents(top1: list[float]) -> str:
    """'85.00%, 86.00%' ('—' for none)."""
    return ", ".join(f"{TOP1.value(v)}%" for v in top1) or "—"


def teacher_text(collected: Collected, block: str) -> str:
    """'teacher 87.17%' (or 'teachers 85.00%, 86.00%', or 'teacher —' when none finished)."""
    top1 = teachers(collected, block)
    return f"teacher{'s' if len(top1) > 1 else ''} {percents(top1)}"


def pair_values(frame: pd.DataFrame, main_p: float, setting: tuple, column: str = "top1"):
    """(FPQ's, LSQ's) values by (block, seed) unit in one cell: what the study's comparison pairs."""
    dataset, arch, w, a = setting
    a_, b_ = (values(select(frame, dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=m,
                            p=method_p(m, main_p)), column) for m in PAIR)
    return a_, b_


def block_rows(collected: Collected) -> list[list[str]]:
    """One row per block: its name, its teacher(s) top-1, its FPQ/LSQ pairs and unpaired runs."""
    frame = main_cells(collected)
    rows = []
    for block in collected.blocks:
        mine = frame[frame.block == block]
        pairs = unpaired = 0
        for setting in settings(mine[mine.method.isin(PAIR)]):
            a, b = pair_values(mine, collected.main_p, setting)
            shared = len(pair_gains(a, b))
            pairs += shared
            unpaired += len(a) + len(b) - 2 * shared
        rows.append([block, percents(teachers(collected, block)), str(pairs), str(unpaired)])
    return rows


def block_effect(a: pd.Series, b: pd.Series, higher: bool = True) -> tuple[dict[str, list[float]], float]:
    """The per-pair gains grouped by block, and the p of a one-way ANOVA that their means differ
    (NaN where fewer than two blocks have pairs, or no block has two)."""
    gains: dict[str, list[float]] = {}
    for unit, gain in pair_gains(a, b, higher).items():
        gains.setdefault(unit_block(unit), []).append(float(gain))
    groups = list(gains.values())
    if len(groups) < 2 or sum(len(g) for g in groups) <= len(groups):
        return gains, math.nan
    return gains, float(stats.f_oneway(*groups).pvalue)


def effect_line(title: str, gains: dict[str, list[float]], p: float) -> str:
    parts = ", ".join(f"{name} {TOP1.diff(sum(g) / len(g))} (n={len(g)})" for name, g in gains.items())
    if len(gains) < 2:
        return f"- {title}: gain by block {parts or '—'}; fewer than two blocks have pairs: no block-effect test."
    if math.isnan(p):
        return f"- {title}: gain by block {parts}; no block has two pairs: no block-effect test."
    return (f"- {title}: gain by block {parts}; does the gain differ between blocks? one-way ANOVA on the "
            f"per-pair gains, p = {pvalue(p)}" + (" (a block effect)." if p < 0.05 else "."))


def blocks_section(collected: Collected) -> list[str]:
    """The claims page's section on the blocks ([] for one results folder)."""
    if not collected.blocks:
        return []
    n, frame = len(collected.blocks), main_cells(collected)
    t = sum(len(teachers(collected, b)) for b in collected.blocks)
    lines = [f"## Blocks: {n} sitting{'s' if n > 1 else ''}, {t} teacher{'s' if t != 1 else ''}", "",
             f"Pooled from {n} block{'s' if n > 1 else ''}, each a sitting that trained its own FP teacher. A "
             "comparison pairs runs of one seed *within one block* (the same teacher): its units are (block, seed). "
             "A run whose partner did not finish in its block is unpaired: it counts in the tables' means, not in "
             "the paired tests.", "",
             pd.DataFrame(block_rows(collected), columns=["Block", "Teacher top-1", "FPQ/LSQ pairs",
                                                          "Unpaired runs"]).to_markdown(index=False,
                                                                                        disable_numparse=True),
             ""]
    for setting in settings(frame[frame.method.isin(PAIR)]):
        a, b = pair_values(frame, collected.main_p, setting)
        gains, p = block_effect(a, b)
        dataset, arch, w, a_bits = setting
        where = f"{DATASET_LABELS.get(dataset, dataset)} {arch_label(arch)} {bits_label(w, a_bits)}"
        lines.append(effect_line(f"FPQ − LSQ top-1, {where}", gains, p))
    return lines + [""]
