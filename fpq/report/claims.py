"""A verdict on each claim of the paper, per cell and rolled up across cells, with the numbers behind it.

Each comparison is paired on the seeds both methods have (Welch's only when they share none);
it gives the gain with its 95% CI, the p-value, the smallest gain the design detects and the
seeds the paper's gain would need (`fpq.report.stats` says how, and what each verdict means).
A cell is a (dataset, arch, bits) setting of the run index, labelled as the tables label it;
FPQ and LSQ+SFP are read at the main p. The roll-up counts the cells where a claim holds, and
how many of them still hold after Holm's correction over that claim's cells.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from fpq.config import FP_BITS
from fpq.method.registry import is_float, method_p
from fpq.plan.table_specs import TABLES
from fpq.report.flags import chance_mark, claim_footnote, path_mark
from fpq.report.formats import DASH, MEASURE, TOP1, Scale, distinct, pvalue
from fpq.report.paper import paper_number
from fpq.report.pooling import blocks_section
from fpq.report.results import Collected, main_cells, path_mismatches, select, settings, values
from fpq.report.stamp import stamp
from fpq.report.stats import (
    DOES_NOT_HOLD,
    DETECTS,
    HOLDS,
    NO_SPREAD,
    NOT_DETECTED,
    SEEDS_CAP,
    UNDETERMINED,
    Comparison,
    compare_seeds,
    detects_text,
    holm,
    verdict_text,
)
from fpq.run.cell import DATASET_LABELS, arch_label, bits_label, method_label

P_OPTIMUM = (0.1, 0.5)
SWEEP = next(spec for spec in TABLES if spec.by_p)  # Table 3: the methods whose p is swept
ABLATION_ORDER = [("lsq+sfp", "lsq"), ("lsq+csd", "lsq"), ("lsq+csd", "lsq+sfp"), ("fpq", "lsq+sfp"),
                  ("fpq", "lsq+csd")]
VERDICTS = (HOLDS, NOT_DETECTED, DOES_NOT_HOLD, UNDETERMINED)
NUMBERS = ["95% CI", "p-value", "Test", DETECTS, "Paper's gain", "Seeds for it", "Verdict"]
PAIR = ["Cell", "A", "B", "Gain of A"] + NUMBERS
ABLATION = ["Cell", "Comparison", "Gain"] + NUMBERS
PSWEEP = ["Cell", "Top-1 by p", "Best p", "Best inside vs outside", "Gain"] + NUMBERS


@dataclass(frozen=True)
class Outcome:
    """What the roll-up counts for one cell: its verdict, p-value (NaN: no test) and gain."""
    verdict: str
    p_value: float
    gain: float
    text: str = ""


@dataclass(frozen=True)
class Claim:
    title: str
    header: list[str]
    rows: list[list[str]]  # the verdict is the last column
    outcomes: list  # one Outcome (or Comparison) per cell
    mismatches: tuple = ()  # pairs whose two runs took different step paths (fpq.report.results.path_mismatches)
    note: str = ""  # what the reader must know to read the numbers (probes, sigma)


def label(dataset, arch, w, a) -> str:
    """The tables' labels of a cell: 'CIFAR-10 ResNet-18 W2A4'."""
    return f"{DATASET_LABELS.get(dataset, dataset)} {arch_label(arch)} {bits_label(w, a)}"


def _cell_rows(frame, method: str, main_p: float, dataset, arch, w, a) -> pd.DataFrame:
    if is_float(method):
        return select(frame, dataset=dataset, arch=arch, method=method)
    return select(frame, dataset=dataset, arch=arch, w_bits=w, a_bits=a, method=method, p=method_p(method, main_p))


def _cell_values(frame, method: str, main_p: float, dataset, arch, w, a, column: str = "top1") -> pd.Series:
    return values(_cell_rows(frame, method, main_p, dataset, arch, w, a), column)


def _paper_top1(ref: pd.DataFrame, table: str, dataset, arch, method: str, w, a) -> float:
    return paper_number(ref, table, dataset, arch, method, *((FP_BITS, FP_BITS) if is_float(method) else (w, a)))[0]


def paper_gain(ref: pd.DataFrame | None, tables: tuple, dataset, arch, w, a, better: str, worse: str) -> float:
    """better - worse in the first of `tables` that has both for this cell; NaN where none has."""
    for table in tables if ref is not None else ():
        top1 = [_paper_top1(ref, table, dataset, arch, m, w, a) for m in (better, worse)]
        gain = top1[0] - top1[1]
        if not math.isnan(gain):
            return gain
    return math.nan


def _stat(v: pd.Series, scale: Scale) -> str:
    if len(v) < 2:
        return f"{scale.value(v.iloc[0])} (n=1)" if len(v) else DASH
    return f"{scale.value(v.mean())} ± {scale.value(v.std(ddof=1))} (n={len(v)})"


def _needed(n: int | None) -> str:
    return DASH if n is None else f"> {SEEDS_CAP}" if n > SEEDS_CAP else f"n ≥ {n}"


def numbers(c: Comparison, scale: Scale) -> list[str]:
    """The NUMBERS columns of a comparison."""
    ci = DASH if math.isnan(c.low) else f"[{scale.diff(c.low)}, {scale.diff(c.high)}]"
    return [ci, pvalue(c.p_value), test_text(c), detects_text(c, scale), scale.diff(c.paper_gain),
            _needed(c.seeds_needed), verdict_text(c, scale)]


def test_text(c: Comparison) -> str:
    """The test column: 'paired, n=3', 'paired, n=2 (1 seed of one side left out)', 'Welch, 2 vs 3'."""
    if c.test == "Welch":
        return f"Welch, {c.n_a} vs {c.n_b}"
    left = f" ({c.left_out} seed{'s' if c.left_out != 1 else ''} of one side left out)" if c.left_out else ""
    return f"paired, n={c.n_a}{left}" if c.test == "paired" else (f"—{left}" if left else DASH)


def beats(frame, main_p: float, a: str, b: str, column: str = "top1", higher: bool = True, ref=None,
          tables: tuple = ()) -> tuple[list[list[str]], list[Comparison], tuple[str, ...]]:
    scale = TOP1 if column == "top1" else MEASURE
    rows, outcomes, mismatches = [], [], []
    for setting in settings(frame[frame.method == a]):
        ra, rb = (_cell_rows(frame, m, main_p, *setting) for m in (a, b))
        va, vb = values(ra, column), values(rb, column)
        if len(va) and len(vb):
            c = compare_seeds(va, vb, higher, paper_gain(ref, tables, *setting, a, b), bound=scale.bound)
            differ = path_mismatches(ra, rb, (method_label(a), method_label(b)))
            mismatches += [f"{label(*setting)}, {m}" for m in differ]
            cell = label(*setting) + (chance_mark(setting[0], va, vb) if column == "top1" else "") + path_mark(differ)
            rows.append([cell, _stat(va, scale), _stat(vb, scale), scale.diff(c.gain), *numbers(c, scale)])
            outcomes.append(c)
    return rows, outcomes, tuple(mismatches)


def all_of(steps: list[Comparison]) -> Outcome:
    """The whole order holds where every step holds; its p-value is the largest step's (an
    intersection-union test), its gain the smallest."""
    verdicts = {c.verdict for c in steps}
    p, gain = max(c.p_value for c in steps), min(c.gain for c in steps)
    if DOES_NOT_HOLD in verdicts:
        return Outcome(DOES_NOT_HOLD, p, gain, "does not hold (a step does not)")
    if UNDETERMINED in verdicts:
        flat = all(c.reason == NO_SPREAD for c in steps if c.verdict == UNDETERMINED)
        return Outcome(UNDETERMINED, math.nan, gain,
                       "undetermined (a step has no spread: no test)" if flat else "undetermined (fewer than 2 seeds)")
    if verdicts == {HOLDS}:
        return Outcome(HOLDS, p, gain, HOLDS)
    unseen = [c for c in steps if c.verdict == NOT_DETECTED]
    if any(c.blind for c in unseen):
        return Outcome(NOT_DETECTED, p, gain, "not detected (this design can detect no effect in a step: see it)")
    detects = max(c.mde for c in unseen)
    return Outcome(NOT_DETECTED, p, gain, f"not detected (this design detects ≥ {TOP1.value(detects)}{TOP1.unit})")


def ablation(frame, main_p: float, ref=None) -> tuple[list[list[str]], list[Outcome]]:
    rows, outcomes = [], []
    for setting in settings(frame[frame.method == ABLATION_ORDER[0][0]]):
        steps = []
        for better, worse in ABLATION_ORDER:
            va, vb = (_cell_values(frame, m, main_p, *setting) for m in (better, worse))
            if len(va) and len(vb):
                c = compare_seeds(va, vb, paper_gain=paper_gain(ref, ("table2",), *setting, better, worse),
                                  bound=TOP1.bound)
                steps.append(c)
                rows.append([label(*setting) + chance_mark(setting[0], va, vb),
                             f"{method_label(better)} − {method_label(worse)}", TOP1.diff(c.gain),
                             *numbers(c, TOP1)])
        if steps:
            whole = all_of(steps)
            outcomes.append(whole)
            p_text = DASH if math.isnan(whole.p_value) else f"{pvalue(whole.p_value)} (largest)"
            rows.append([label(*setting), "the whole order", DASH, DASH, p_text] + [DASH] * 4 + [whole.text])
    return rows, outcomes


def _paper_p(ref, dataset, arch, w, a, p: float) -> float:
    return math.nan if ref is None else _paper_top1(ref, "table3", dataset, arch, f"fpq(p={p:g})", w, a)


def psweep(frame, ref=None) -> tuple[list[list[str]], list]:
    rows, outcomes = [], []
    sfp = frame[frame.method.isin(SWEEP.methods) & frame.p.notna()]
    for setting in settings(sfp):
        dataset, arch, w, a = setting
        cell = select(sfp, dataset=dataset, arch=arch, w_bits=w, a_bits=a)
        by_p = {float(p): values(g) for p, g in cell.groupby("p")}
        by_p = {p: v for p, v in by_p.items() if len(v)}
        if len(by_p) < 2:
            continue
        best = lambda ps: max(ps, key=lambda p: by_p[p].mean())  # noqa: E731
        inside = [p for p in by_p if P_OPTIMUM[0] <= p <= P_OPTIMUM[1]]
        outside = [p for p in by_p if p not in inside]
        curve = ", ".join(f"p={p:g}: {TOP1.value(v.mean())}" for p, v in sorted(by_p.items()))
        lead = [label(*setting), curve, f"{best(by_p):g}"]
        if not (inside and outside):
            text = "undetermined (no p on both sides of the range)"
            rows.append(lead + [DASH] * 9 + [text])
            outcomes.append(Outcome(UNDETERMINED, math.nan, math.nan, text))
            continue
        p_in, p_out = best(inside), best(outside)
        paper = _paper_p(ref, *setting, p_in) - _paper_p(ref, *setting, p_out)
        c = compare_seeds(by_p[p_in], by_p[p_out], paper_gain=paper, bound=TOP1.bound)
        rows.append(lead + [f"p={p_in:g} vs p={p_out:g}", TOP1.diff(c.gain), *numbers(c, TOP1)])
        outcomes.append(c)
    return rows, outcomes


def hessian_note(frame) -> str:
    """The probe counts of the final trace and of Fig. 5's trajectory, which may differ."""
    ok = frame[frame.status == "ok"]
    final = distinct(ok.hessian_probes)
    trajectory = distinct([e["probes"] for t in ok.trajectory for e in t if "probes" in e])
    if not final:
        return ""
    text = f"Final models: Hutchinson trace with {final} Rademacher probes"
    if trajectory and trajectory != final:
        return text + (f"; Fig. 5's trajectory uses {trajectory} probes a point: a different measurement, "
                       "with its own noise.")
    return text + (" (Fig. 5's trajectory uses as many a point)." if trajectory else ".")


def variance_note(frame) -> str:
    sigma = distinct(frame.loc[frame.status == "ok", "variance_sigma"])
    return f"Logit variance under Gaussian input noise of σ = {sigma}." if sigma else ""


def claims(collected: Collected, ref: pd.DataFrame | None = None) -> list[Claim]:
    frame, p = main_cells(collected), collected.main_p

    def pair(title: str, a: str, b: str, tables: tuple = (), note: str = "", **kw) -> Claim:
        return Claim(title, PAIR, *beats(frame, p, a, b, ref=ref, tables=tables, **kw), note=note)

    return [
        pair("FPQ beats LSQ (Tables 2, 4, 5)", "fpq", "lsq", ("table2", "table4", "table5")),
        pair("FPQ beats PACT (Tables 4, 5)", "fpq", "pact", ("table4", "table5")),
        pair("FPQ beats LSQ+ (Tables 4, 5)", "fpq", "lsq+", ("table4", "table5")),
        pair("FPQ beats KD (Tables 4, 5)", "fpq", "kd", ("table4", "table5")),
        pair("FPQ beats LSQ+SAM (Table 1)", "fpq", "lsq+sam", ("table1",)),
        pair("FPQ beats the full-precision model (Tables 1, 4, 5)", "fpq", "fp", ("table1", "table4", "table5")),
        Claim("Ablation order LSQ < LSQ+SFP < LSQ+CSD < FPQ (Table 2)", ABLATION, *ablation(frame, p, ref)),
        Claim(f"The best p lies in {P_OPTIMUM[0]}–{P_OPTIMUM[1]} (Table 3)", PSWEEP, *psweep(frame, ref),
              note="Best inside vs outside: the best p inside the range against the best outside it, chosen "
                   "after seeing the means (so the p-value flatters the inside)."),
        pair("FPQ's Hessian trace is below LSQ's (Fig. 5; final models)", "fpq", "lsq", column="hessian_trace",
             higher=False, note=hessian_note(frame)),
        pair("FPQ's output variance under input noise is below LSQ's (Fig. 1)", "fpq", "lsq",
             column="output_variance", higher=False, note=variance_note(frame)),
    ]


def rollup(claim: Claim) -> str:
    """'holds in k of n cells, h after Holm's correction (...)', or 'no cells' when no run covers it.

    >>> nan = float("nan")
    >>> rollup(Claim("t", [], [], [Outcome(HOLDS, 0.001, 1.0), Outcome(HOLDS, 0.04, 1.0),
    ...                             Outcome(NOT_DETECTED, 0.3, 0.5), Outcome(UNDETERMINED, nan, 1.0)]))
    "holds in 2 of 4 cells, 1 after Holm's correction (1 not detected, 1 undetermined)"
    >>> rollup(Claim("t", [], [], [Outcome(NOT_DETECTED, 0.3, 0.5)]))
    "holds in 0 of 1 cell, 0 after Holm's correction (1 not detected)"
    """
    n = len(claim.outcomes)
    if not n:
        return "no cells"
    counts = Counter(o.verdict for o in claim.outcomes)
    tested = [o for o in claim.outcomes if not math.isnan(o.p_value)]
    after = sum(rejected and o.gain > 0 for rejected, o in zip(holm([o.p_value for o in tested]), tested))
    rest = ", ".join(f"{counts[v]} {v}" for v in VERDICTS[1:] if counts[v])
    return (f"holds in {counts[HOLDS]} of {n} {'cell' if n == 1 else 'cells'}, {after} after Holm's correction"
            + (f" ({rest})" if rest else ""))


def _md_table(header: list[str], rows: list[list]) -> str:
    if not rows:
        return "No runs for this claim in the run index.\n"
    return pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True) + "\n"


def _run_list(title: str, items: list[str]) -> list[str]:
    return [f"## {title} ({len(items)})", ""] + [f"- {item}" for item in items] + [""] if items else []


def legend(main_p: float) -> str:
    return (
        "Each comparison is **paired by seed** on the seeds both methods have results for (runs of one "
        "seed share the teacher, the data order and augmentation, and the calibration images): the t-test on "
        "the per-seed differences; a seed only one side has is left out, and the Test column says how many were. "
        "Only when no seed is shared is it **Welch's** t-test. 'Gain' is A − B (B − A for the Hessian "
        "trace and the output variance, where lower is better), with its 95% confidence interval and two-sided "
        "p-value. 'This design detects' gives the minimum detectable effect: the smallest true gain this design (its "
        "number of seeds and spread) finds with 80% power at the 5% level (noncentral t), or *no gain at all* where "
        "even the largest the measure allows would not show. 'Paper's gain' is the same "
        "difference in the paper's table for this cell (config/reference_tables.csv); 'Seeds for it' is how many "
        "seeds this spread would need to find it with 80% power (paired: seeds; Welch: seeds per method).\n\n"
        "Verdicts, read from the 95% CI of the gain: *holds*: the CI lies above 0 (the gain's size may still "
        "differ from the paper's). *does not hold*: the CI lies below 0, or below the paper's gain for that cell "
        "(a gain as large as the paper's is excluded). *not detected (this design detects ≥ X)*: neither; a "
        "true gain of X or more would have shown 4 times in 5, a smaller one can hide in the seed noise; where "
        "even the largest gain the measure allows (top-1 cannot pass 100%, a trace or a variance 0) would not, "
        "it says *this design can detect no effect*, with the seeds and the spread that make it so. "
        "*undetermined*: fewer than 2 seeds on a side, or fewer than 2 seeds shared, or no spread (the same "
        "difference on every seed, e.g. identical on every seed): a t-test needs a spread. The ablation order holds "
        "in a cell when every step "
        "holds; its p-value is the largest of its steps'. Across cells: the cells where the claim holds, and "
        "how many still hold after Holm's correction over that claim's cells (family-wise 5%).\n\n"
        f"Top-1 in % (gains in points), mean ± std over seeds (n); FPQ and LSQ+SFP at p = {main_p:g}."
    )


CLAIMS_TITLE = "Claims of Pang & Cai (2025), checked on our runs"


def claims_markdown(collected: Collected, ref: pd.DataFrame | None = None) -> str:
    """The claims page, what made it (the provenance stamp) under its title."""
    found = claims(collected, ref)
    parts = [
        f"# {CLAIMS_TITLE}", "", stamp(collected).line(), "", *blocks_section(collected), legend(collected.main_p), "",
        "## Summary", "",
        _md_table(["Claim", "Across cells"], [[c.title, rollup(c)] for c in found]),
    ]
    for i, claim in enumerate(found, 1):
        parts += [f"## {i}. {claim.title}", "", f"Across cells: {rollup(claim)}.", ""]
        parts += [claim.note, ""] if claim.note and claim.rows else []
        parts += [_md_table(claim.header, claim.rows)] + claim_footnote(claim.rows, claim.mismatches)
    from fpq.report.readings import readings_section  # it reads this module's cell labels

    parts += readings_section(collected)
    runs = collected.runs
    failed = [f"{r.run_id}: {r.error}" for r in runs[runs.status == "failed"].itertuples()]
    parts += _run_list("Failed runs", failed)
    parts += _run_list("Missing runs", list(runs.loc[runs.status == "missing", "run_id"]))
    parts += _run_list("Unreadable result files (ignored)", collected.unreadable)
    return "\n".join(parts)
