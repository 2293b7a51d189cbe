"""The paper's Tables 1-5 regenerated from the runs of a run index, next to the paper's numbers.

One builder for every `TableSpec` (fpq/plan/table_specs.py): rows in the paper's order of archs, bit
settings and methods; our mean ± std over seeds (n), the paper's number, ours minus the paper's;
failed runs counted in their cell, expected runs without a result listed under the table, the
paper's own oddities (reference_tables.csv `note`) as footnotes. Markdown and LaTeX (booktabs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from fpq.config import FP_BITS
from fpq.io import write_text
from fpq.method.registry import is_float, method_p, method_rank
from fpq.plan.index import RunIndex
from fpq.plan.table_specs import TABLES, TableSpec
from fpq.report.claims import CLAIMS_TITLE, claims_markdown
from fpq.report.flags import PATH, footnotes, row_flags
from fpq.report.formats import acc, signed
from fpq.report.html_page import page, rst_caption
from fpq.report.paper import load_reference, paper_number
from fpq.report.results import Collected, Stat, collect, path_mismatches, select, settings, summarize
from fpq.report.stamp import Stamp, stamp
from fpq.run.cell import DATASET_LABELS, arch_label, bits_label, method_label

OURS, DELTA = "Ours (mean ± std)", "Δ (ours − paper)"


@dataclass(frozen=True)
class Row:
    labels: dict  # leading columns: Dataset, Arch, Bits, Method (or p)
    stat: Stat
    paper: float
    note: str  # the paper's note on its number, if any
    flags: str = ""  # fpq.report.flags markers on our number (chance level, a teacher's seeds far apart)


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    rows: list[Row]
    missing: list[str]  # run ids of this table's rows without a result
    run_ids: list[str]  # every run of its rows
    mismatches: tuple = ()  # pairs of its rows whose runs of one seed took different step paths


def row_methods(spec: TableSpec, trained: set[str]) -> list[str]:
    """The methods a setting's rows show: the spec's in its order, then every other method its grid
    trained (paper order), so a method added to a grid is never trained and left out of its table."""
    extra = sorted({m for m in trained - set(spec.methods) if not is_float(m)}, key=method_rank)
    return [m for m in spec.methods if m in trained] + extra


def build_table(spec: TableSpec, entries: pd.DataFrame, ref: pd.DataFrame, main_p: float) -> Table:
    mine = entries[entries.grid == spec.grid]
    if spec.dataset:
        mine = mine[mine.dataset == spec.dataset]
    shown_dataset = spec.dataset is None
    rows, used, fp_done, mismatches = [], [], set(), []
    for dataset, arch, w, a in settings(mine[~mine.method.map(is_float).astype(bool)]):
        quantized = []  # (row index, its runs, its label) of this setting's QAT rows
        lead = {"Dataset": DATASET_LABELS.get(dataset, dataset)} if shown_dataset else {}
        lead["Arch"] = arch_label(arch)
        if spec.fp_row and (dataset, arch) not in fp_done:
            fp_done.add((dataset, arch))
            sel = select(mine, dataset=dataset, arch=arch, method="fp")
            used.append(sel)
            rows.append(Row({**lead, "Bits": "FP", "Method": "FP"}, summarize(sel),
                            *paper_number(ref, spec.paper_table, dataset, arch, "fp", FP_BITS, FP_BITS),
                            flags=_flags(sel, dataset, teacher=True)))
        setting = select(mine, dataset=dataset, arch=arch, w_bits=w, a_bits=a)
        for method in row_methods(spec, set(setting.method)):
            ps = sorted(setting[setting.method == method].p.dropna().unique()) if spec.by_p else (
                [method_p(method, main_p)])
            for p in ps:
                at_p = select(setting, method=method, p=p)
                for reading in sorted(set(at_p.reading)) or [""]:  # the suite's own reading ('') first
                    sel = at_p[at_p.reading == reading]
                    used.append(sel)
                    label = {"p": f"{p:g}"} if spec.by_p else {"Method": method_label(method)}
                    if reading:  # another reading of the method (a grid's quant): said in its row
                        label = {k: f"{v} ({reading.replace(',', ', ')})" for k, v in label.items()}
                    quantized.append((len(rows), sel, next(iter(label.values()))))
                    rows.append(Row({**lead, "Bits": bits_label(w, a), **label}, summarize(sel),
                                    *paper_number(ref, spec.paper_table, dataset, arch, spec.paper_method(method, p),
                                                  w, a), flags=_flags(sel, dataset, teacher=False)))
        where = f"{arch_label(arch)} {bits_label(w, a)}"
        mismatches += [f"{where}, {m}" for m in _mark_path_mismatches(rows, quantized)]
    picked = pd.concat(used) if used else mine.iloc[:0]
    missing = list(dict.fromkeys(picked.loc[picked.status == "missing", "run_id"]))
    return Table(spec, rows, missing, list(dict.fromkeys(picked.run_id)), tuple(mismatches))


def _mark_path_mismatches(rows: list[Row], quantized: list[tuple]) -> list[str]:
    """Mark (in place) each row with a seed whose run took another step path than the same seed's run
    of another row of the setting; returns the pairs, each with the path of either side."""
    found = []
    for k, (i, sel_i, label_i) in enumerate(quantized):
        for j, sel_j, label_j in quantized[k + 1:]:
            differ = path_mismatches(sel_i, sel_j, (label_i, label_j))
            for index in (i, j) if differ else ():
                if PATH not in rows[index].flags:
                    rows[index] = replace(rows[index], flags=rows[index].flags + PATH)
            found += differ
    return found


def _flags(rows: pd.DataFrame, dataset: str, teacher: bool) -> str:
    return row_flags(list(rows.loc[rows.status == "ok", "top1"].dropna()), dataset, teacher)


def fmt_stat(s: Stat, pm: str = "±") -> str:
    if s.n == 0:
        return f"failed ({s.failed})" if s.failed else "missing"
    text = f"{acc(s.mean)} {pm} {acc(s.std)}" if s.n >= 2 else acc(s.mean)
    return text + (f" [{s.failed} failed]" if s.failed else "")


def _notes(table: Table) -> dict[str, str]:
    """Footnote marker per distinct paper note: a, b, c ..."""
    notes = list(dict.fromkeys(r.note for r in table.rows if r.note))
    return {note: chr(ord("a") + i) for i, note in enumerate(notes)}


def _records(table: Table, mark) -> list[dict]:
    marks = _notes(table)
    out = []
    for row in table.rows:
        diff = row.stat.mean - row.paper if row.stat.n and not math.isnan(row.paper) else math.nan
        paper = acc(row.paper) + (mark(marks[row.note]) if row.note and not math.isnan(row.paper) else "")
        ours = fmt_stat(row.stat) + (f" {row.flags}" if row.flags else "")
        out.append({**row.labels, OURS: ours, "n": str(row.stat.n), "Paper": paper, DELTA: signed(diff)})
    return out


def describe(metric: str) -> str:
    return (f"Ours: {metric}-epoch test top-1, mean ± std over seeds (n seeds with a result). Paper: its "
            "single runs (config/reference_tables.csv); — where the paper has no such cell.")


def no_grid_text(spec: TableSpec) -> str:
    """Why a table has no runs at all: the run index lists every run its config plans, done or not.

    >>> no_grid_text(TABLES[4]), no_grid_text(TABLES[0])
    ('this config has no CIFAR-100 grid', 'this config has no sam grid')
    """
    return f"this config has no {DATASET_LABELS.get(spec.dataset, spec.dataset) if spec.dataset else spec.grid} grid"


def to_markdown(table: Table, metric: str, title: str, made: str) -> str:
    """The table under its title, what its columns are and what made it (`made`: the stamp line)."""
    lines = [f"# {title}", "", describe(metric), "", made, ""]
    records = _records(table, lambda m: f" ({m})")
    if records:
        frame = pd.DataFrame(records)
        align = ["left"] * (frame.shape[1] - 4) + ["right"] * 4
        lines.append(frame.to_markdown(index=False, disable_numparse=True, colalign=align))
    elif not table.run_ids:
        lines.append(f"No runs for this table: {no_grid_text(table.spec)}.")
    else:
        lines.append("No runs for this table in the run index.")
    lines += [""] + [f"({m}) Paper: {note}." for note, m in _notes(table).items()]
    lines += [""] + footnotes([r.flags for r in table.rows], table.mismatches)
    if table.missing:
        lines += ["", f"Missing runs ({len(table.missing)}), expected but without a result:", ""]
        lines += [f"- {rid}" for rid in table.missing]
    return "\n".join(lines).rstrip() + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("—", "--"), ("Δ", r"$\Delta$"), ("−", "$-$"), ("†", r"$^\dagger$"),
                 ("‡", r"$^\ddagger$"), ("§", r"\S{}"), ("×", r"$\times$")):
        text = text.replace(a, b)
    return text


def to_latex(table: Table, metric: str, made: str) -> str:
    spec = table.spec
    head = [f"% {spec.name}: generated by `fpq tables` from the run index; needs \\usepackage{{booktabs}}.",
            f"% {made}"]
    records = _records(table, lambda m: f"\\textsuperscript{{{m}}}")
    if not records:
        return "\n".join(head + [f"% {spec.title}: no runs in the run index."]) + "\n"
    columns = list(records[0])
    caption = _tex(f"{spec.title}; ours: {metric}-epoch top-1, mean ± std over n seeds")
    lines = head + [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}", f"\\label{{tab:{spec.name}}}",
                    f"\\begin{{tabular}}{{{'l' * (len(columns) - 4)}rrrr}}", r"\toprule",
                    " & ".join(_tex(c) for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(str(r[c])) for c in columns) + r" \\" for r in records]
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = [f"\\textsuperscript{{{m}}}~{_tex(note)}." for note, m in _notes(table).items()]
    if notes:
        lines += [r"\par\smallskip\footnotesize Paper: " + " ".join(notes)]
    lines += [r"\par\smallskip\footnotesize " + _tex(line)
              for line in footnotes([r.flags for r in table.rows], table.mismatches)]
    lines += [r"\par\smallskip\footnotesize " + _tex(made) + "."]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


def write_page(out: Path, name: str, markdown: str, title: str, made: str) -> list[Path]:
    """<name>.md, its HTML twin <name>.html (what the Snakemake report shows) and the report's caption
    file <name>.caption.rst (title and stamp)."""
    return [write_text(out / f"{name}.md", markdown), write_text(out / f"{name}.html", page(markdown, title)),
            write_text(out / f"{name}.caption.rst", rst_caption(title, made))]


def build_tables(results: Path, index: RunIndex, out: Path, reference: Path, metric: str = "final") -> list[Path]:
    return write_tables(collect(results, index, metric), out, reference, metric)


def write_tables(collected: Collected, out: Path, reference: Path, metric: str = "final") -> list[Path]:
    """Every table and the claims page of what was collected (one results folder, or pooled blocks)."""
    ref = load_reference(reference)
    written = []
    for spec in TABLES:
        table = build_table(spec, collected.entries, ref, collected.main_p)
        title = f"{spec.number}: {spec.title}"
        made = (stamp(collected, table.run_ids) if table.run_ids else
                Stamp(collected.name or "unnamed", "", "", no_grid_text(spec), "", "")).line()
        written += write_page(out, spec.name, to_markdown(table, metric, title, made), title, made)
        written.append(write_text(out / f"{spec.name}.tex", to_latex(table, metric, made)))
    written += write_page(out, "claims", claims_markdown(collected, ref), CLAIMS_TITLE, stamp(collected).line())
    return written
