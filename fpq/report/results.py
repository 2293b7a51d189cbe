"""Read the runs a run index lists into tables of rows, and summarize cells over seeds.

Only the index's runs are read, each from its own folder: `metrics.json` (status ok, or failed
for a run that diverged or whose teacher failed), `failed.json` (a run that crashed),
`hessian.json`, `variance.json`. Unreadable files are reported, never guessed at. Every row's
cell comes from the index, never from a folder name.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fpq.plan.index import RunIndex
from fpq.run.cell import setting_rank

CELL = ["dataset", "arch", "w_bits", "a_bits", "method", "p", "seed", "reading"]
RUN_KEY = CELL + ["block", "run_id"]  # one run: the same run id in two blocks is two runs
RUN_COLUMNS = ["stage", "teacher", "block", "run_id", "status", "top1", "trajectory", "history", "error", "hessian_trace",
               "hessian_probes", "output_variance", "variance_sigma", "made", "path"]


@dataclass(frozen=True)
class Collected:
    runs: pd.DataFrame  # one row per run of the index: cell, status, metrics
    entries: pd.DataFrame  # one row per grid entry: the grid, the cell as asked, its run's status and metrics
    unreadable: list[str]  # files that exist but could not be parsed
    main_p: float
    name: str = ""  # the config's name, as the index records it
    blocks: tuple[str, ...] = ()  # the blocks pooled here (fpq.report.pooling), in order; () for one results folder
    main_readings: dict = field(default_factory=dict)  # method -> the config's reading of it ('' omitted)


def _read(path: Path, unreadable: list[str]) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        unreadable.append(str(path))
        return None


def _measurement(data: dict | None, key: str) -> float:
    if not data or data.get("status", "ok") != "ok":
        return math.nan
    value = data
    for part in key.split("."):
        value = value[part]
    return float(value)


def _run_row(results: Path, rid: str, metric: str, unreadable: list[str]) -> dict:
    folder = results / "runs" / rid
    row = {"block": "", "run_id": rid, "status": "missing", "top1": math.nan, "trajectory": [], "history": [], "error": "",
           "made": {}, "path": ""}
    metrics = _read(folder / "metrics.json", unreadable)
    failed = _read(folder / "failed.json", unreadable)
    if metrics is not None and metrics.get("status", "ok") == "ok":
        row.update(status="ok", top1=float(metrics[metric]["top1"]), trajectory=metrics.get("hessian_trajectory", []),
                   history=metrics.get("history", []))
    elif metrics is not None or failed is not None:
        row.update(status="failed", error=(metrics or failed).get("error", "unknown error"))
    if metrics is not None:
        row["made"], row["path"] = made(metrics), step_path(metrics)
    hessian, variance = _read(folder / "hessian.json", unreadable), _read(folder / "variance.json", unreadable)
    row["hessian_trace"] = _measurement(hessian, "trace.mean")
    row["hessian_probes"] = _optional(hessian, "trace.probes")
    row["output_variance"] = _measurement(variance, "logit_variance")
    row["variance_sigma"] = _optional(variance, "sigma")
    return row


def made(metrics: dict) -> dict:
    """What a result file says made it (the provenance stamp's inputs): data, epochs, code, device."""
    config = metrics.get("config") or {}
    seen = [h["train_images"] for h in metrics.get("history", []) if "train_images" in h]
    return {"data": config.get("data", {}), "epochs": (config.get("optim") or {}).get("epochs"),
            "train_images": max(seen) if seen else None, "code": metrics.get("code") or {},
            "device": metrics.get("device") or {}, "torch": (metrics.get("packages") or {}).get("torch")}


def step_path(metrics: dict) -> str:
    """The step path a run trained on, from its `precision`: 'CUDA graph, triton kernels, bf16' or
    'eager, torch kernels, fp32' ('' for a result without one). A run written before the kernels
    existed ran the torch path.

    >>> step_path({"precision": {"cuda_graph": {"train": {"captured": True}}, "student_autocast": "bf16"}})
    'CUDA graph, torch kernels, bf16'
    >>> step_path({"precision": {"cuda_graph": False, "kernels_in_force": "triton", "student_autocast": None}})
    'eager, triton kernels, fp32'
    """
    precision = metrics.get("precision")
    if not precision:
        return ""
    graphs = precision.get("cuda_graph")
    graph = "CUDA graph" if isinstance(graphs, dict) and (graphs.get("train") or {}).get("captured") else "eager"
    return f"{graph}, {precision.get('kernels_in_force', 'torch')} kernels, {precision.get('student_autocast') or 'fp32'}"


def _optional(data: dict | None, key: str) -> float:
    """A measurement's setting (probes, sigma), NaN where the file does not record it."""
    try:
        return _measurement(data, key)
    except (KeyError, TypeError, ValueError):
        return math.nan


def collect(results: str | Path, index: RunIndex, metric: str = "final") -> Collected:
    results, unreadable = Path(results), []
    runs = pd.DataFrame([{**r.cell.as_dict(), "stage": r.stage, "teacher": r.teacher,
                          **_run_row(results, rid, metric, unreadable)}
                         for rid, r in index.runs.items()], columns=CELL + RUN_COLUMNS)
    measured = runs.drop(columns=CELL + ["stage", "teacher", "block"]).set_index("run_id")
    entries = pd.DataFrame([{"grid": e.grid, **e.cell.as_dict(), "block": "", "run_id": e.run_id}
                            for e in index.entries], columns=["grid"] + CELL + ["block", "run_id"])
    entries = entries.join(measured, on="run_id")
    for frame in (runs, entries):  # None (no SFP) becomes NaN: p compares as a number everywhere
        frame["p"] = frame["p"].astype(float)
        frame["reading"] = [r if isinstance(r, str) else "" for r in frame["reading"]]  # the suite's own: none
    return Collected(runs, entries, unreadable, index.main_p, index.name, main_readings=dict(index.main_readings))


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    n: int
    failed: int = 0
    missing: int = 0

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n) if self.n >= 2 else math.nan


def summarize(rows: pd.DataFrame, column: str = "top1") -> Stat:
    """Mean and std over the ok rows' values; counts of failed and missing runs beside them."""
    vals = rows.loc[rows.status == "ok", column].dropna()
    n = len(vals)
    std = float(vals.std(ddof=1)) if n >= 2 else math.nan
    return Stat(float(vals.mean()) if n else math.nan, std, n, int((rows.status == "failed").sum()),
                int((rows.status == "missing").sum()))


def stat_of(values) -> Stat:
    """Mean and std (ddof=1) of plain numbers, e.g. the accuracies of a benchmark's seeds.

    >>> s = stat_of([1.0, 2.0, 3.0]); (s.mean, s.std, s.n)
    (2.0, 1.0, 3)
    """
    return summarize(pd.DataFrame({"status": "ok", "top1": list(values)}))


def unique_cells(collected: Collected) -> pd.DataFrame:
    """Every cell of every grid once (a run answering two grids counts once per cell it answers)."""
    return collected.entries.drop(columns="grid").drop_duplicates(subset=RUN_KEY)


def main_cells(collected: Collected) -> pd.DataFrame:
    """`unique_cells` at each method's main reading (the config's `quant`): what claims and figures
    compare. Another reading of a method (a grid's own `quant`) is a study of its own."""
    frame = unique_cells(collected)
    main = frame.method.map(lambda m: collected.main_readings.get(m, ""))
    return frame[frame.reading == main]


def settings(frame: pd.DataFrame) -> list[tuple]:
    """The (dataset, arch, w_bits, a_bits) settings of the rows, in the paper's order."""
    keys = {(r.dataset, r.arch, int(r.w_bits), int(r.a_bits)) for r in frame.itertuples()}
    return sorted(keys, key=setting_rank)


def select(frame: pd.DataFrame, **key) -> pd.DataFrame:
    """Rows matching every key; `p=None` matches a method without SFP."""
    sel = frame
    for k, v in key.items():
        if k == "p":
            sel = sel[sel.p.isna()] if v is None else sel[(sel.p - v).abs() < 1e-9]
        else:
            sel = sel[sel[k] == v]
    return sel


def path_mismatches(rows_a: pd.DataFrame, rows_b: pd.DataFrame, names: tuple[str, str]) -> list[str]:
    """The units (seed, or 'BLOCK sSEED') both sides ran, on different step paths: one text each,
    '2026-12-04-h200 s3 (FPQ: eager, torch kernels, bf16; LSQ: CUDA graph, torch kernels, bf16)'."""
    paths = []
    for rows in (rows_a, rows_b):
        ok = rows[(rows.status == "ok") & rows.path.astype(bool)]
        units = [unit_label(b, s) if b else f"s{s}" for b, s in zip(ok.block, ok.seed.astype(int))]
        paths.append(dict(zip(units, ok.path)))
    shared = [u for u in paths[0] if u in paths[1] and paths[0][u] != paths[1][u]]
    return [f"{u} ({names[0]}: {paths[0][u]}; {names[1]}: {paths[1][u]})" for u in shared]


def values(rows: pd.DataFrame, column: str = "top1") -> pd.Series:
    """The ok rows' values by unit: what a paired comparison lines up. A unit is a seed, or, where
    blocks are pooled, a (block, seed) 'BLOCK sSEED': runs pair only with runs of their own block,
    which trained their own teacher."""
    ok = rows[(rows.status == "ok") & rows[column].notna()]
    seeds = ok.seed.to_numpy(dtype=int)
    if "block" in ok and ok.block.astype(bool).any():
        return pd.Series(ok[column].to_numpy(dtype=float), index=[unit_label(b, s) for b, s in zip(ok.block, seeds)],
                         dtype=float)
    return pd.Series(ok[column].to_numpy(dtype=float), index=seeds, dtype=float)


def unit_label(block: str, seed: int) -> str:
    """A (block, seed) unit's label, 'BLOCK sSEED'; `unit_block` reads the block back."""
    return f"{block} s{seed}"


def unit_block(label) -> str:
    """The block of a unit's label (the part before the last ' s': a block's name may hold one).

    >>> unit_block(unit_label("2026-12-04-h200", 3)), unit_block(unit_label("a s1", 12))
    ('2026-12-04-h200', 'a s1')
    """
    return str(label).rsplit(" s", 1)[0]
