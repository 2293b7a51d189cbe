"""The paper's Tables 1-5 regenerated from run folders, next to the paper's numbers.

Every cell: our mean +- std over seeds (n), the paper's number, and ours minus the paper's.
Cells with failed runs say so; expected runs that have no result are listed under the table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from fpq.claims import claims_markdown
from fpq.grid import parse_run_id
from fpq.io import write_text
from fpq.results import Stat, cell_stat, collect

MAIN_METHODS = ["fp", "pact", "lsq", "lsq+", "kd", "fpq"]
ABLATION = ["lsq", "lsq+sfp", "lsq+csd", "fpq"]
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


@dataclass(frozen=True)
class Row:
    labels: dict  # leading columns (arch, bits, method ...)
    stat: Stat
    paper: float


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: list[Row]
    belongs: Callable[[dict], bool]  # does an expected run (parsed id) feed this table?


def bits_label(w: int, a: int) -> str:
    return "FP" if w == 32 and a == 32 else f"W{w}A{a}"


def load_reference(path: Path) -> pd.DataFrame:
    ref = pd.read_csv(path)
    return ref.fillna({"note": ""})


def paper_value(ref: pd.DataFrame, table: str, dataset: str, arch: str, method: str, w: int, a: int) -> float:
    hit = ref[(ref.table == table) & (ref.dataset == dataset) & (ref.arch == arch) & (ref.method == method)
              & (ref.w_bits == w) & (ref.a_bits == a)]
    return float(hit.top1.iloc[0]) if len(hit) else math.nan


def _groups(runs: pd.DataFrame, methods: list[str], keys: list[str]) -> list[tuple]:
    sel = runs[runs.method.isin(methods)]
    return sorted({tuple(r) for r in sel[keys].itertuples(index=False)})


def comparison_table(runs, ref, dataset: str, table: str, main_p: float) -> Table:
    """Tables 4 (CIFAR-10) and 5 (CIFAR-100): FP, PACT, LSQ, LSQ+, KD, FPQ per arch and bits."""
    rows = []
    for arch, w, a in _groups(runs[(runs.dataset == dataset) & (runs.w_bits < 32)], MAIN_METHODS,
                              ["arch", "w_bits", "a_bits"]):
        if not rows or rows[-1].labels["Arch"] != arch:
            rows.append(Row({"Arch": arch, "Bits": "FP", "Method": "fp"},
                            cell_stat(runs, dataset=dataset, arch=arch, method="fp"),
                            paper_value(ref, table, dataset, arch, "fp", 32, 32)))
        for method in MAIN_METHODS[1:]:
            key = dict(dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method)
            if method == "fpq":
                key["p"] = main_p
            rows.append(Row({"Arch": arch, "Bits": bits_label(w, a), "Method": method}, cell_stat(runs, **key),
                            paper_value(ref, table, dataset, arch, method, w, a)))
    return Table(table, f"Table {table[-1]}: {DATASET_NAMES[dataset]} top-1 (%)", rows,
                 lambda r: r["dataset"] == dataset and r["method"] in MAIN_METHODS
                 and (r["p"] is None or abs(r["p"] - main_p) < 1e-9))


def ablation_table(runs, ref, main_p: float) -> Table:
    rows = []
    for dataset, arch, w, a in _groups(runs, ["lsq+sfp", "lsq+csd"], ["dataset", "arch", "w_bits", "a_bits"]):
        for method in ABLATION:
            key = dict(dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method)
            if method in ("lsq+sfp", "fpq"):
                key["p"] = main_p
            rows.append(Row({"Dataset": dataset, "Arch": arch, "Bits": bits_label(w, a), "Method": method},
                            cell_stat(runs, **key), paper_value(ref, "table2", dataset, arch, method, w, a)))
    return Table("table2", "Table 2: ablation of SFP and CSD, top-1 (%)", rows,
                 lambda r: r["method"] in ("lsq+sfp", "lsq+csd"))


def psweep_table(runs, ref) -> Table:
    rows = []
    fpq = runs[runs.method == "fpq"]
    for dataset, arch, w, a in _groups(fpq, ["fpq"], ["dataset", "arch", "w_bits", "a_bits"]):
        cell = fpq[(fpq.dataset == dataset) & (fpq.arch == arch) & (fpq.w_bits == w) & (fpq.a_bits == a)]
        ps = sorted(cell.p.dropna().unique())
        if len(ps) < 2:
            continue
        for p in ps:
            rows.append(Row({"Dataset": dataset, "Arch": arch, "Bits": bits_label(w, a), "p": f"{p:g}"},
                            cell_stat(runs, dataset=dataset, arch=arch, w_bits=w, a_bits=a, method="fpq", p=p),
                            paper_value(ref, "table3", dataset, arch, f"fpq(p={p:g})", w, a)))
    return Table("table3", "Table 3: FPQ p sweep (CSD on), top-1 (%)", rows, lambda r: r["method"] == "fpq")


def sam_table(runs, ref, main_p: float) -> Table:
    rows = []
    for dataset, arch, w, a in _groups(runs, ["lsq+sam"], ["dataset", "arch", "w_bits", "a_bits"]):
        rows.append(Row({"Dataset": dataset, "Arch": arch, "Bits": "FP", "Method": "fp"},
                        cell_stat(runs, dataset=dataset, arch=arch, method="fp"),
                        paper_value(ref, "table1", dataset, arch, "fp", 32, 32)))
        for method in ("lsq+sam", "fpq"):
            key = dict(dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method)
            if method == "fpq":
                key["p"] = main_p
            rows.append(Row({"Dataset": dataset, "Arch": arch, "Bits": bits_label(w, a), "Method": method},
                            cell_stat(runs, **key), paper_value(ref, "table1", dataset, arch, method, w, a)))
    return Table("table1", "Table 1: LSQ+SAM vs FPQ, top-1 (%)", rows, lambda r: r["method"] == "lsq+sam")


def fmt_stat(s: Stat, latex: bool = False) -> str:
    if s.n == 0:
        return "failed" if s.failed else "missing"
    pm = r"$\pm$" if latex else "±"
    text = f"{s.mean:.2f} {pm} {s.std:.2f}" if s.n >= 2 else f"{s.mean:.2f}"
    return text + (f" [{s.failed} failed]" if s.failed else "")


def to_frame(table: Table, latex: bool = False) -> pd.DataFrame:
    records = []
    for row in table.rows:
        diff = row.stat.mean - row.paper if row.stat.n and not math.isnan(row.paper) else math.nan
        records.append({**row.labels, "Ours (mean ± std)" if not latex else r"Ours (mean $\pm$ std)":
                        fmt_stat(row.stat, latex), "n": row.stat.n,
                        "Paper": "—" if math.isnan(row.paper) else f"{row.paper:.2f}",
                        "Δ (ours − paper)" if not latex else r"$\Delta$ (ours $-$ paper)":
                        "—" if math.isnan(diff) else f"{diff:+.2f}"})
    return pd.DataFrame(records)


def to_markdown(table: Table, metric: str, missing: list[str]) -> str:
    lines = [f"# {table.title}", "",
             f"Ours: {metric}-epoch test top-1, mean ± std over seeds (n seeds). Paper: single runs "
             "(config/reference_tables.csv); — where the paper has no such cell.", ""]
    lines.append(to_frame(table).to_markdown(index=False, disable_numparse=True) if table.rows else "No runs for this table in the results.")
    if missing:
        lines += ["", f"Missing runs ({len(missing)}), expected but without a result:", ""]
        lines += [f"- {rid}" for rid in missing]
    return "\n".join(lines) + "\n"


def to_latex(table: Table, metric: str) -> str:
    if not table.rows:
        return f"% {table.title}: no runs in the results.\n"
    frame = to_frame(table, latex=True)
    frame = frame.map(lambda v: v.replace("_", r"\_").replace("—", "--") if isinstance(v, str) else v)
    caption = f"{table.title} ({metric}-epoch; ours: mean $\\pm$ std over n seeds)".replace("%", r"\%")
    return frame.style.hide(axis="index").to_latex(hrules=True, caption=caption, label=f"tab:{table.name}",
                                                   column_format="l" * frame.shape[1])


def build_tables(results: Path, out: Path, reference: Path, expected: list[str] | None = None,
                 metric: str = "final", main_p: float = 0.1) -> list[Path]:
    collected = collect(results, metric)
    runs, ref = collected.runs, load_reference(reference)
    done = set(runs[runs.status == "ok"].run_id)
    missing = [rid for rid in (expected or []) if rid not in done]
    tables = [sam_table(runs, ref, main_p), ablation_table(runs, ref, main_p), psweep_table(runs, ref),
              comparison_table(runs, ref, "cifar10", "table4", main_p),
              comparison_table(runs, ref, "cifar100", "table5", main_p)]
    names = {"table1": "table1_sam", "table2": "table2_ablation", "table3": "table3_psweep",
             "table4": "table4_cifar10", "table5": "table5_cifar100"}
    written = []
    for table in tables:
        mine = [rid for rid in missing if (parsed := parse_run_id(rid)) and table.belongs(parsed)]
        written.append(write_text(out / f"{names[table.name]}.md", to_markdown(table, metric, mine)))
        written.append(write_text(out / f"{names[table.name]}.tex", to_latex(table, metric)))
    written.append(write_text(out / "claims.md", claims_markdown(runs, main_p, missing, collected.unreadable)))
    return written
