"""The paper's own numbers (config/reference_tables.csv): read once, looked up by table and cell.

Tables print them beside ours; claims take the paper's gain for a comparison from them.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd


def load_reference(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).fillna({"note": ""})


def paper_number(ref: pd.DataFrame, table: str, dataset, arch, method: str, w: int, a: int) -> tuple[float, str]:
    """(top-1, note) of one cell of one of the paper's tables (`method` as the csv names it, e.g.
    'fpq(p=0.3)'); (NaN, '') where that table has no such cell."""
    hit = ref[(ref.table == table) & (ref.dataset == dataset) & (ref.arch == arch) & (ref.method == method)
              & (ref.w_bits == w) & (ref.a_bits == a)]
    return (float(hit.top1.iloc[0]), str(hit.note.iloc[0])) if len(hit) else (math.nan, "")
