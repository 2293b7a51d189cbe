"""A verdict on each claim of the paper, per cell and rolled up across cells, with the numbers behind it.

Verdicts compare means over seeds with Welch's t-test at the 5% level: holds / within seed
noise / does not hold (undetermined with fewer than two seeds). A cell is a (dataset, arch,
bits) setting of the run index; FPQ and LSQ+SFP are read at the main p.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
import pandas as pd

from fpq.run.cell import bits_label, method_label
from fpq.method.registry import METHODS
from fpq.report.results import Collected, Stat, compare, select, settings, summarize, unique_cells

P_OPTIMUM = (0.1, 0.5)
ABLATION_ORDER = [("lsq+sfp", "lsq"), ("lsq+csd", "lsq"), ("lsq+csd", "lsq+sfp"), ("fpq", "lsq+sfp"),
                  ("fpq", "lsq+csd")]
VERDICTS = ("holds", "within seed noise", "does not hold", "undetermined (fewer than 2 seeds)")


@dataclass(frozen=True)
class Claim:
    title: str
    header: list[str]
    rows: list[list[str]]  # the verdict is the last column


def _num(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _stat(s: Stat) -> str:
    return f"{_num(s.mean)} ± {_num(s.std)} (n={s.n})"


def _settings(frame: pd.DataFrame, method: str) -> list[tuple]:
    return settings(frame[frame.method == method])


def _cell_stat(frame, method: str, main_p: float, dataset, arch, w, a, column: str = "top1") -> Stat:
    if method == "fp":
        return summarize(select(frame, dataset=dataset, arch=arch, method="fp"), column)
    p = main_p if METHODS[method].sfp else None
    return summarize(select(frame, dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method, p=p), column)


def _label(dataset, arch, w, a) -> str:
    return f"{dataset} {arch} {bits_label(w, a)}"


def beats(frame, main_p: float, a: str, b: str, column: str = "top1", higher: bool = True) -> list[list[str]]:
    rows = []
    for setting in _settings(frame, a):
        sa, sb = (_cell_stat(frame, m, main_p, *setting, column=column) for m in (a, b))
        if sa.n and sb.n:
            verdict, diff, p_value = compare(sa, sb, higher)
            rows.append([_label(*setting), _stat(sa), _stat(sb), _num(diff), _num(p_value), verdict])
    return rows


def ablation(frame, main_p: float) -> list[list[str]]:
    rows = []
    for setting in _settings(frame, "lsq+sfp"):
        verdicts, parts = [], []
        for better, worse in ABLATION_ORDER:
            sa, sb = (_cell_stat(frame, m, main_p, *setting) for m in (better, worse))
            if sa.n and sb.n:
                verdict, diff, _ = compare(sa, sb)
                verdicts.append(verdict)
                parts.append(f"{method_label(better)} − {method_label(worse)} = {_num(diff)} ({verdict})")
        if not verdicts:
            continue
        overall = ("does not hold" if "does not hold" in verdicts else VERDICTS[3] if VERDICTS[3] in verdicts
                   else "holds" if all(v == "holds" for v in verdicts) else "within seed noise")
        rows.append([_label(*setting), "; ".join(parts), overall])
    return rows


def psweep(frame) -> list[list[str]]:
    rows = []
    sfp = frame[(frame.method == "fpq") & frame.p.notna()]
    for setting in _settings(sfp, "fpq"):
        dataset, arch, w, a = setting
        cell = select(sfp, dataset=dataset, arch=arch, w_bits=w, a_bits=a)
        stats = {float(p): summarize(g) for p, g in cell.groupby("p")}
        stats = {p: s for p, s in stats.items() if s.n}
        if len(stats) < 2:
            continue
        best = max(stats, key=lambda p: stats[p].mean)
        inside = [p for p in stats if P_OPTIMUM[0] <= p <= P_OPTIMUM[1]]
        outside = [p for p in stats if p not in inside]
        if inside and outside:
            verdict = compare(stats[max(inside, key=lambda p: stats[p].mean)],
                              stats[max(outside, key=lambda p: stats[p].mean)])[0]
        else:
            verdict = "undetermined (no p on both sides of the range)"
        curve = ", ".join(f"p={p:g}: {_num(s.mean)}" for p, s in sorted(stats.items()))
        rows.append([_label(*setting), curve, f"{best:g}", verdict])
    return rows


PAIR = ["Cell", "A", "B", "Gain of A", "p-value", "Verdict"]


def claims(collected: Collected) -> list[Claim]:
    frame, p = unique_cells(collected), collected.main_p

    def pair(title: str, a: str, b: str, **kw) -> Claim:
        return Claim(title, PAIR, beats(frame, p, a, b, **kw))

    return [
        pair("FPQ beats LSQ (Tables 2, 4, 5)", "fpq", "lsq"),
        pair("FPQ beats PACT (Tables 4, 5)", "fpq", "pact"),
        pair("FPQ beats LSQ+ (Tables 4, 5)", "fpq", "lsq+"),
        pair("FPQ beats KD (Tables 4, 5)", "fpq", "kd"),
        pair("FPQ beats LSQ+SAM (Table 1)", "fpq", "lsq+sam"),
        pair("FPQ beats the full-precision model (Tables 1, 4, 5)", "fpq", "fp"),
        Claim("Ablation order LSQ < LSQ+SFP < LSQ+CSD < FPQ (Table 2)", ["Cell", "Comparisons", "Verdict"],
              ablation(frame, p)),
        Claim(f"The best p lies in {P_OPTIMUM[0]}–{P_OPTIMUM[1]} (Table 3)",
              ["Cell", "Top-1 by p", "Best p", "Verdict (best inside vs best outside)"], psweep(frame)),
        pair("FPQ's Hessian trace is below LSQ's (Fig. 5; final models)", "fpq", "lsq", column="hessian_trace",
             higher=False),
        pair("FPQ's output variance under input noise is below LSQ's (Fig. 1)", "fpq", "lsq",
             column="output_variance", higher=False),
    ]


def rollup(claim: Claim) -> str:
    """'holds in k of n cells (...)', or 'no cells' when the runs do not cover the claim.

    >>> rollup(Claim("t", ["Verdict"], [["holds"], ["holds"], ["within seed noise"], ["undetermined (x)"]]))
    'holds in 2 of 4 cells (1 within seed noise, 1 undetermined)'
    """
    counts = Counter(v if v in VERDICTS[:3] else "undetermined" for *_, v in claim.rows)
    n = sum(counts.values())
    if not n:
        return "no cells"
    rest = ", ".join(f"{counts[v]} {v}" for v in ("within seed noise", "does not hold", "undetermined") if counts[v])
    return f"holds in {counts['holds']} of {n} cells" + (f" ({rest})" if rest else "")


def _md_table(header: list[str], rows: list[list]) -> str:
    if not rows:
        return "No runs for this claim in the run index.\n"
    return pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True) + "\n"


def _run_list(title: str, items: list[str]) -> list[str]:
    return [f"## {title} ({len(items)})", ""] + [f"- {item}" for item in items] + [""] if items else []


def claims_markdown(collected: Collected) -> str:
    found = claims(collected)
    parts = [
        "# Claims of Pang & Cai (2025), checked on our runs", "",
        "Welch's t-test over seeds (two-sided, 5%): *holds* when A is significantly better than B, "
        "*does not hold* when significantly worse, *within seed noise* otherwise. 'Gain of A' is A − B "
        f"(B − A for the Hessian trace and the output variance, where lower is better). FPQ and LSQ+SFP at "
        f"p = {collected.main_p:g}; mean ± std (n seeds).", "",
        "## Summary", "",
        _md_table(["Claim", "Across cells"], [[c.title, rollup(c)] for c in found]),
    ]
    for i, claim in enumerate(found, 1):
        parts += [f"## {i}. {claim.title}", "", f"Across cells: {rollup(claim)}.", "",
                  _md_table(claim.header, claim.rows)]
    runs = collected.runs
    failed = [f"{r.run_id}: {r.error}" for r in runs[runs.status == "failed"].itertuples()]
    parts += _run_list("Failed runs", failed)
    parts += _run_list("Missing runs", list(runs.loc[runs.status == "missing", "run_id"]))
    parts += _run_list("Unreadable result files (ignored)", collected.unreadable)
    return "\n".join(parts)
