"""Read run folders into one table of runs, and summarize cells over seeds.

Only complete files are read: `metrics.json` exists only after a run finished (it is written
last and atomically); temporary files (`.metrics.json.*.tmp`) and unreadable files are skipped
and reported, and `failed.json` marks a run that stopped with an error.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fpq.methods import METHODS

CELL = ["dataset", "arch", "w_bits", "a_bits", "method", "p"]


@dataclass(frozen=True)
class Collected:
    runs: pd.DataFrame  # one row per finished or failed run
    unreadable: list[str]  # folders whose metrics.json could not be parsed


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _row(cfg: dict, status: str, run_id: str) -> dict:
    method = cfg["method"]
    return {"run_id": run_id, "dataset": cfg["data"]["dataset"], "arch": cfg["arch"], "method": method,
            "w_bits": cfg["quant"]["w_bits"], "a_bits": cfg["quant"]["a_bits"], "seed": cfg["seed"],
            "p": cfg["quant"]["sfp_p"] if METHODS[method].sfp else math.nan, "status": status}


def collect(results: Path, metric: str = "final") -> Collected:
    rows, unreadable = [], []
    for folder in sorted((results / "runs").glob("*")) if (results / "runs").is_dir() else []:
        metrics_path, failed_path = folder / "metrics.json", folder / "failed.json"
        if metrics_path.exists():
            m = _read(metrics_path)
            if m is None or "config" not in m:
                unreadable.append(folder.name)
                continue
            row = _row(m["config"], "ok", m.get("run_id") or folder.name)
            row["top1"] = m[metric]["top1"]
            row["trajectory"] = m.get("hessian_trajectory", [])
            h = _read(folder / "hessian.json")
            row["hessian_trace"] = h["trace"]["mean"] if h else math.nan
            v = _read(folder / "variance.json")
            row["output_variance"] = v["logit_variance"] if v else math.nan
            rows.append(row)
        elif failed_path.exists() and (f := _read(failed_path)) is not None:
            rows.append({**_row(f["config"], "failed", f.get("run_id") or folder.name), "error": f["error"]})
    columns = CELL + ["seed", "run_id", "status", "top1", "trajectory", "hessian_trace", "output_variance"]
    frame = pd.DataFrame(rows)
    for col in columns:
        if col not in frame:
            frame[col] = math.nan if col not in ("trajectory", "run_id", "status") else None
    return Collected(frame, unreadable)


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    n: int
    failed: int = 0

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n) if self.n >= 2 else math.nan


def summarize(values: pd.Series, failed: int = 0) -> Stat:
    vals = values.dropna()
    n = len(vals)
    std = float(vals.std(ddof=1)) if n >= 2 else math.nan
    return Stat(float(vals.mean()) if n else math.nan, std, n, failed)


def cell_stat(runs: pd.DataFrame, column: str = "top1", **key) -> Stat:
    """Mean/std over seeds of the runs matching `key` (p matched only when given)."""
    sel = runs
    for k, v in key.items():
        sel = sel[(sel[k] - v).abs() < 1e-9] if k == "p" else sel[sel[k] == v]
    ok = sel[sel["status"] == "ok"]
    return summarize(ok[column], failed=int((sel["status"] == "failed").sum()))


def compare(a: Stat, b: Stat, higher_is_better: bool = True, alpha: float = 0.05) -> tuple[str, float, float]:
    """Verdict on 'a beats b' by Welch's two-sided t-test over seeds at level `alpha`.

    Returns (verdict, difference in the better direction, p-value). Seeds are few, so the test
    uses the t distribution with Welch-Satterthwaite degrees of freedom, not a normal cut.
    """
    from scipy import stats

    diff = a.mean - b.mean if higher_is_better else b.mean - a.mean
    if a.n < 2 or b.n < 2:
        return "undetermined (fewer than 2 seeds)", diff, math.nan
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    if va + vb == 0:
        verdict = "holds" if diff > 0 else "does not hold" if diff < 0 else "within seed noise"
        return verdict, diff, 0.0 if diff else 1.0
    t = diff / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    p_value = float(2 * stats.t.sf(abs(t), dof))
    if p_value >= alpha:
        return "within seed noise", diff, p_value
    return ("holds" if diff > 0 else "does not hold"), diff, p_value
