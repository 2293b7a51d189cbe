"""A verdict on each claim of the paper, with the numbers behind it.

Verdicts compare means over seeds with Welch's t-test at the 5% level:
holds / within seed noise / does not hold (undetermined with fewer than two seeds).
"""
from __future__ import annotations

import math

import pandas as pd

from fpq.results import Stat, cell_stat, compare, summarize

P_OPTIMUM = (0.1, 0.5)
ABLATION_ORDER = [("lsq+sfp", "lsq"), ("lsq+csd", "lsq"), ("lsq+csd", "lsq+sfp"), ("fpq", "lsq+sfp"),
                  ("fpq", "lsq+csd")]


def _num(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _stat(s: Stat) -> str:
    return f"{_num(s.mean)} ± {_num(s.std)} (n={s.n})"


def _cells(runs: pd.DataFrame, methods: list[str]) -> list[tuple]:
    sel = runs[runs.method.isin(methods) & (runs.status == "ok")]
    return sorted({tuple(r) for r in sel[["dataset", "arch", "w_bits", "a_bits"]].itertuples(index=False)})


def _key(method: str, main_p: float, dataset, arch, w, a) -> dict:
    key = dict(dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method)
    if method in ("fpq", "lsq+sfp"):
        key["p"] = main_p
    return key


def beats_rows(runs, main_p: float, a: str, b: str, column: str = "top1", higher: bool = True) -> list[list]:
    rows = []
    for dataset, arch, w, abits in _cells(runs, [a]):
        sa = cell_stat(runs, column, **_key(a, main_p, dataset, arch, w, abits))
        sb = (cell_stat(runs, column, dataset=dataset, arch=arch, method="fp") if b == "fp"
              else cell_stat(runs, column, **_key(b, main_p, dataset, arch, w, abits)))
        if sa.n and sb.n:
            verdict, diff, p_value = compare(sa, sb, higher)
            rows.append([f"{dataset} {arch} W{w}A{abits}", _stat(sa), _stat(sb), _num(diff), _num(p_value), verdict])
    return rows


def ablation_rows(runs, main_p: float) -> list[list]:
    rows = []
    for dataset, arch, w, a in _cells(runs, ["lsq+sfp", "lsq+csd"]):
        verdicts, parts = [], []
        for better, worse in ABLATION_ORDER:
            sa = cell_stat(runs, **_key(better, main_p, dataset, arch, w, a))
            sb = cell_stat(runs, **_key(worse, main_p, dataset, arch, w, a))
            if sa.n and sb.n:
                verdict, diff, _ = compare(sa, sb)
                verdicts.append(verdict)
                parts.append(f"{better} − {worse} = {_num(diff)} ({verdict})")
        overall = ("does not hold" if "does not hold" in verdicts else "holds" if verdicts and all(
            v == "holds" for v in verdicts) else "within seed noise" if verdicts else "no data")
        if any(v.startswith("undetermined") for v in verdicts) and overall != "does not hold":
            overall = "undetermined (fewer than 2 seeds)"
        rows.append([f"{dataset} {arch} W{w}A{a}", "; ".join(parts), overall])
    return rows


def psweep_rows(runs) -> list[list]:
    rows = []
    fpq = runs[(runs.method == "fpq") & (runs.status == "ok")]
    for dataset, arch, w, a in _cells(fpq, ["fpq"]):
        cell = fpq[(fpq.dataset == dataset) & (fpq.arch == arch) & (fpq.w_bits == w) & (fpq.a_bits == a)]
        stats = {p: summarize(g.top1) for p, g in cell.groupby("p")}
        if len(stats) < 2:
            continue
        best_p = max(stats, key=lambda p: stats[p].mean)
        inside = [p for p in stats if P_OPTIMUM[0] <= p <= P_OPTIMUM[1]]
        outside = [p for p in stats if p not in inside]
        if not inside or not outside:
            verdict = "no data on both sides of the range"
        else:
            bi = max(inside, key=lambda p: stats[p].mean)
            bo = max(outside, key=lambda p: stats[p].mean)
            verdict = compare(stats[bi], stats[bo])[0]
        curve = ", ".join(f"p={p:g}: {_num(s.mean)}" for p, s in sorted(stats.items()))
        rows.append([f"{dataset} {arch} W{w}A{a}", curve, f"{best_p:g}", verdict])
    return rows


def _md_table(header: list[str], rows: list[list]) -> str:
    if not rows:
        return "No runs for this claim in the results.\n"
    return pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True) + "\n"


def claims_markdown(runs: pd.DataFrame, main_p: float, missing: list[str], unreadable: list[str]) -> str:
    head = ["Cell", "A", "B", "Gain of A", "p-value", "Verdict"]
    parts = [
        "# Claims of Pang & Cai (2025), checked on our runs", "",
        "Verdict per claim: Welch's t-test over seeds (two-sided, 5%): *holds* when A is significantly "
        "better than B, *does not hold* when significantly worse, *within seed noise* otherwise. "
        f"'Gain of A' is A − B (B − A for the Hessian trace, where lower is better). "
        f"FPQ and LSQ+SFP at p = {main_p:g}; mean ± std (n seeds).", "",
        "## 1. FPQ beats LSQ (Tables 4, 5)", "", _md_table(head, beats_rows(runs, main_p, "fpq", "lsq")),
        "## 2. FPQ beats the full-precision model", "", _md_table(head, beats_rows(runs, main_p, "fpq", "fp")),
        "## 3. Ablation order LSQ < LSQ+SFP < LSQ+CSD < FPQ (Table 2)", "",
        _md_table(["Cell", "Comparisons", "Verdict"], ablation_rows(runs, main_p)),
        f"## 4. The best p lies in {P_OPTIMUM[0]}–{P_OPTIMUM[1]} (Table 3)", "",
        _md_table(["Cell", "Top-1 by p", "Best p", "Verdict (best inside vs best outside)"], psweep_rows(runs)),
        "## 5. FPQ's Hessian trace is below LSQ's (Fig. 5; final models)", "",
        _md_table(head, beats_rows(runs, main_p, "fpq", "lsq", column="hessian_trace", higher=False)),
    ]
    failed = runs[runs.status == "failed"]
    if len(failed):
        parts += ["## Failed runs", ""] + [f"- {r.run_id}: {r.error}" for r in failed.itertuples()] + [""]
    if missing:
        parts += [f"## Missing runs ({len(missing)})", ""] + [f"- {rid}" for rid in missing] + [""]
    if unreadable:
        parts += ["## Unreadable result files (ignored)", ""] + [f"- {rid}" for rid in unreadable] + [""]
    return "\n".join(parts)
