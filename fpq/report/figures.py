"""Fig. 5 (Hessian trace during QAT, LSQ vs FPQ at the main p), Fig. 1 (output variance) and the
training curves (`fpq.report.curves`).

Each figure is built from a data function (`fig5_series`, `fig1_bars`) that the tests check
directly; the plotting only draws what those return, and says in the figure what its lines, bands
and bars are. Runs come from the run index; a figure with nothing to draw says why.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fpq.io import write_text
from fpq.method.registry import is_float, method_p
from fpq.report.composition import NAME as COMPOSITION
from fpq.report.composition import TITLE as COMPOSITION_TITLE
from fpq.report.composition import composition_caption, composition_figure
from fpq.report.curves import CURVE_GRIDS, curves_figure
from fpq.report.formats import distinct
from fpq.report.html_page import rst_caption
from fpq.report.plots import band, band_figure, color, empty, footer, plt, readable_ticks, save
from fpq.report.results import Collected, main_cells, select
from fpq.report.stamp import stamp
from fpq.run.cell import DATASET_LABELS, arch_label, bits_label, method_label, setting_rank

FIG5_METHODS = ("lsq", "fpq")
FIG1_METHODS = ("fp", "lsq", "fpq")


def _unique_ok(collected: Collected) -> pd.DataFrame:
    frame = main_cells(collected)
    return frame[frame.status == "ok"]


def _band(trajectories: list[list[dict]]) -> dict:
    """The trace's mean ± std band over runs at each epoch, clipped at 0 (a trace band below zero
    would be an artefact of few seeds, not a measurement)."""
    return band([pd.DataFrame(t).set_index("epoch")["mean"] for t in trajectories], floor=0.0)


def fig5_series(collected: Collected) -> dict[tuple, dict[str, dict]]:
    """{(dataset, arch, w_bits, a_bits): {method: band}} for LSQ and FPQ at the main p."""
    ok = _unique_ok(collected)
    ok = ok[ok.trajectory.map(bool).astype(bool)]  # an object-dtype mask on no rows would select columns
    out: dict[tuple, dict[str, dict]] = {}
    for method in FIG5_METHODS:
        rows = select(ok, method=method, p=method_p(method, collected.main_p))
        for key, group in rows.groupby(["dataset", "arch", "w_bits", "a_bits"]):
            out.setdefault(tuple(key), {})[method] = _band(list(group.trajectory))
    return out


def fig5_caption(collected: Collected) -> str:
    """What the lines and bands are, and the probe counts behind them (the trajectory's and the final
    trace's may differ)."""
    ok = _unique_ok(collected)
    trajectory = distinct([e["probes"] for t in ok.trajectory for e in t if "probes" in e])
    final = distinct(ok.hessian_probes)
    text = "Line: mean over seeds (n in each legend); band: ± 1 std over them, clipped at 0."
    if trajectory:
        text += f" Hutchinson trace, {trajectory} probes a point"
        text += (f"; the final models' trace (claims) uses {final}." if final and final != trajectory else ".")
    return text


def hessian_plot(collected: Collected):
    """Rows = dataset x arch, columns = bit settings; mean ± std band over seeds, clipped at 0."""
    def lines(panel: dict) -> list:
        return [(method_label(m) + (f" (p={collected.main_p:g})" if method_p(m, collected.main_p) is not None else ""), m, line)
                for m, line in panel.items()]

    return band_figure(fig5_series(collected), lines, "Hessian trace", "upper right",
                       f"Hessian trace during QAT\n{fig5_caption(collected)}",
                       "no Hessian trajectories in the run index", collected)


def hessian_figure(collected: Collected, out: Path) -> list[Path]:
    return save(hessian_plot(collected), out, "fig5_hessian")


def fig1_bars(collected: Collected) -> dict[tuple, dict[str, tuple[float, float, int]]]:
    """{(dataset, arch, w_bits, a_bits): {method: (mean, std, n)}} of the logit variance; FP is the
    teacher of that (dataset, arch), FPQ at the main p."""
    ok = _unique_ok(collected)
    ok = ok[ok.output_variance.notna()]
    out: dict[tuple, dict] = {}
    quantized = ok[~ok.method.map(is_float).astype(bool)]
    for (dataset, arch, w, a), _ in quantized.groupby(["dataset", "arch", "w_bits", "a_bits"]):
        bars = {}
        for method in FIG1_METHODS:
            key = dict(dataset=dataset, arch=arch, method=method)
            if not is_float(method):
                key.update(w_bits=w, a_bits=a, p=method_p(method, collected.main_p))
            values = select(ok, **key).output_variance
            if len(values):
                bars[method] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                                len(values))
        out[(dataset, arch, int(w), int(a))] = bars
    return out


def _legend_n(bars: dict, method: str) -> str:
    ns = sorted({b[method][2] for b in bars.values() if method in b})
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"


def variance_plot(collected: Collected):
    """Bars: mean logit variance over seeds per method and setting; error bars: ± 1 std (none for n = 1)."""
    bars = fig1_bars(collected)
    keys = sorted(bars, key=setting_rank)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(keys)), 3.8), constrained_layout=True)
    footer(fig, collected)
    if not keys:
        empty(ax, "no output-variance results in the run index", collected)
        return fig
    width = 0.8 / len(FIG1_METHODS)
    for i, method in enumerate(FIG1_METHODS):
        if not any(method in bars[k] for k in keys):
            continue
        values = [bars[k].get(method, (np.nan, 0.0, 0)) for k in keys]
        errors = [v[1] if v[2] > 1 else np.nan for v in values]  # one seed has no spread to draw
        ax.bar(np.arange(len(keys)) + i * width, [v[0] for v in values], width, yerr=errors,
               capsize=3, color=color(method), label=f"{method_label(method)} ({_legend_n(bars, method)})")
    labels = [f"{arch_label(a)}\n{DATASET_LABELS.get(d, d)}\n{bits_label(w, b)}" for d, a, w, b in keys]
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, labels, fontsize=7)
    largest = max(m + s for b in bars.values() for m, s, _ in b.values())
    readable_ticks(ax, "y", largest, "output variance (logits)")
    sigma = distinct(_unique_ok(collected).variance_sigma)
    noise = f"Gaussian input noise, σ = {sigma}" if sigma else "Gaussian input noise"
    ax.set_title(f"Output variance under {noise} (FP = the teacher)\n"
                 "bars: mean over n seeds (legend); error bars: ± 1 std over them", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def variance_figure(collected: Collected, out: Path) -> list[Path]:
    return save(variance_plot(collected), out, "fig1_variance")


def captions(collected: Collected, curve_grids: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Each figure's title and what it shows, for its caption in the Snakemake report."""
    return {"fig5_hessian": ("Fig. 5: Hessian trace during QAT, LSQ vs FPQ at the main p", fig5_caption(collected)),
            "fig1_variance": ("Fig. 1: output variance under Gaussian input noise (FP = the teacher, LSQ, FPQ)",
                              "Bars: mean over seeds; error bars: ± 1 std over them."),
            "training_curves": (f"Training curves: test top-1 after each QAT epoch, cells of the "
                                f"{', '.join(curve_grids)} grid", "Line: mean over seeds; band: ± 1 std over them."),
            COMPOSITION: (COMPOSITION_TITLE, composition_caption(collected))}


def build_figures(collected: Collected, out: Path, curve_grids: tuple[str, ...] = CURVE_GRIDS) -> list[Path]:
    """Fig. 5, Fig. 1, the training curves of the cells of `curve_grids` (the ablation grid; add
    "main" for the main grid's) and the loss composition, each with a caption file for the Snakemake report (title, what it
    shows, the provenance stamp, which the figure's footer also carries)."""
    paths = (hessian_figure(collected, out) + variance_figure(collected, out)
             + curves_figure(collected, out, curve_grids) + composition_figure(collected, out))
    made = stamp(collected).line()
    for name, (title, text) in captions(collected, curve_grids).items():
        paths.append(write_text(out / f"{name}.caption.rst", rst_caption(title, text, made)))
    return paths
