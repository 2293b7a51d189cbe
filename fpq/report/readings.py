"""The readings study's section of the claims page: each reading of CSD against LSQ on the shared
seeds (gain, 95% CI, what the design detects), CSD's size against CE at the last epoch beside it,
and one sentence saying which reading, if any, lets CSD help at this schedule.

A reading is a method at reading keys of its own (`csd_lambda`, `csd_reduce`, `csd_taps`; the grid
`readings` of config/readings.yaml): the cells of the `readings` grid, compared with the grid's
baseline, the first method of the Readings table (LSQ) at the config's reading.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fpq.method.registry import method_p, reading_keys
from fpq.plan.table_specs import TABLES
from fpq.report.formats import DASH, TOP1
from fpq.report.results import Collected, select, settings, unique_cells, values
from fpq.report.stats import DETECTS, HOLDS, Comparison, compare_seeds, detects_text, verdict_text
from fpq.run.cell import method_label

SPEC = next(spec for spec in TABLES if spec.grid == "readings")
BASELINE = SPEC.methods[0]
HEADER = ["Cell", "Reading", "A", BASELINE.upper(), "Gain of A", "95% CI", DETECTS, "Extra terms / CE", "Verdict"]


def reading_label(method: str, reading: str) -> str:
    """'LSQ+CSD (csd_lambda=0.2)', or the method's label at the suite's own reading."""
    return method_label(method) + (f" ({reading.replace(',', ', ')})" if reading else "")


def term_ratio(rows: pd.DataFrame) -> float:
    """The extra terms over CE at the last epoch, mean over the rows' runs (NaN without loss parts)."""
    ratios = []
    for history in rows.loc[rows.status == "ok", "history"]:
        parts = (history[-1] if history else {}).get("loss_parts") or {}
        extra = [v for k, v in parts.items() if k not in ("steps", "ce") and not isinstance(v, list)]
        if extra and parts.get("ce"):
            ratios.append(sum(extra) / parts["ce"])
    return float(np.mean(ratios)) if ratios else math.nan


def reading_comparisons(collected: Collected) -> list[tuple[tuple, str, str, Comparison, pd.Series, pd.Series, float]]:
    """(setting, method, reading, the comparison with the baseline, A's values, B's values, terms/CE)
    for every reading of the `readings` grid but the baseline's own."""
    frame = unique_cells(collected)
    grid = collected.entries[collected.entries.grid == SPEC.grid]
    out = []
    for setting in settings(grid):
        dataset, arch, w, a = setting
        cell = select(frame, dataset=dataset, arch=arch, w_bits=w, a_bits=a)
        cell = cell[cell.run_id.isin(set(grid.run_id))]
        base = values(select(cell, method=BASELINE, p=None)[lambda f: f.reading == ""])
        keys = cell[cell.method != BASELINE][["method", "reading"]].drop_duplicates()
        for method, reading in sorted(keys.itertuples(index=False), key=lambda k: (SPEC.methods.index(k[0])
                                      if k[0] in SPEC.methods else len(SPEC.methods), k[1])):
            rows = select(cell, method=method, p=method_p(method, collected.main_p))
            rows = rows[rows.reading == reading]
            mine = values(rows)
            if len(mine) and len(base):
                c = compare_seeds(mine, base, bound=TOP1.bound)
                out.append((setting, method, reading, c, mine, base, term_ratio(rows)))
    return out


def _stat(v: pd.Series) -> str:
    return f"{TOP1.value(v.mean())} ± {TOP1.value(v.std(ddof=1))} (n={len(v)})" if len(v) > 1 else (
        f"{TOP1.value(v.iloc[0])} (n=1)")


def verdict_sentence(found: list, epochs: int | None) -> str:
    """Which reading of CSD, if any, beats the baseline at this schedule, with what the design could see."""
    schedule = f"at this schedule ({epochs} QAT epochs)" if epochs else "at this schedule"
    readers = [f for f in found if reading_keys(f[1])]  # the methods with reading keys: those with CSD
    helps = [f for f in readers if f[3].verdict == HOLDS]
    if helps:
        return (f"CSD helps {schedule} under " + "; ".join(
            f"{reading_label(m, r)} (+{TOP1.value(c.gain)} points, 95% CI [{TOP1.diff(c.low)}, {TOP1.diff(c.high)}])"
            for _, m, r, c, *_ in helps) + f": their gain over {method_label(BASELINE)} holds.")
    if not readers:
        return "No reading of CSD has a result beside the baseline yet."
    seen = [c.mde for _, _, _, c, *_ in readers if not math.isnan(c.mde)]
    sees = f"; this design detects gains ≥ {TOP1.value(min(seen))} points at best" if seen else (
        "; no reading could be tested yet (fewer than 2 pairs, or no spread)")
    return f"No reading lets CSD beat {method_label(BASELINE)} {schedule}{sees}."


def readings_section(collected: Collected) -> list[str]:
    """The section's Markdown lines ([] where the index has no readings grid)."""
    found = reading_comparisons(collected)
    if not found:
        return []
    epochs = {m.get("epochs") for m in collected.entries.loc[collected.entries.grid == SPEC.grid, "made"]
              if isinstance(m, dict) and m.get("epochs")} - {None}
    from fpq.report.claims import label  # the claims page's cell labels (claims imports this module)

    rows = []
    for (dataset, arch, w, a), method, reading, c, mine, base, ratio in found:
        ci = DASH if math.isnan(c.low) else f"[{TOP1.diff(c.low)}, {TOP1.diff(c.high)}]"
        rows.append([label(dataset, arch, w, a), reading_label(method, reading), _stat(mine), _stat(base),
                     TOP1.diff(c.gain), ci, detects_text(c, TOP1), DASH if math.isnan(ratio) else f"{ratio:.1f}×",
                     verdict_text(c, TOP1)])
    table = pd.DataFrame(rows, columns=HEADER).to_markdown(index=False, disable_numparse=True)
    return ["## Readings of CSD", "",
            f"Each reading of what the paper leaves open in CSD (docs/specification.md: `csd_taps`, `csd_reduce`, "
            f"`csd_lambda`) against {method_label(BASELINE)}, paired on the seeds both have. 'Extra terms / CE': the "
            "training loss's terms beside CE over CE at the last epoch, mean over seeds (the loss-composition "
            "figure, loss_composition, draws them by epoch and by tap).", "",
            verdict_sentence(found, max(epochs) if epochs else None), "", table, ""]
