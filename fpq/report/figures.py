"""Fig. 5 (Hessian trace during QAT, LSQ vs FPQ at the main p) and Fig. 1 (output variance).

Each figure is built from a data function (`fig5_series`, `fig1_bars`) that the tests check
directly; the plotting only draws what those return. Runs come from the run index.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fpq.run.cell import (ARCH_ORDER, DATASET_LABELS, arch_label, bits_label, bits_rank, method_label,  # noqa: E402
                      order_rank, setting_rank)
from fpq.io import atomic_write  # noqa: E402
from fpq.report.results import Collected, select, unique_cells  # noqa: E402

COLORS = {"lsq": "tab:blue", "fpq": "tab:red", "fp": "tab:gray"}
FIG5_METHODS = ("lsq", "fpq")
FIG1_METHODS = ("fp", "lsq", "fpq")


def _save(fig, out: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        atomic_write(path, lambda f, ext=ext: fig.savefig(f, format=ext, bbox_inches="tight", dpi=150))
        paths.append(path)
    plt.close(fig)
    return paths


def _unique_ok(collected: Collected) -> pd.DataFrame:
    frame = unique_cells(collected)
    return frame[frame.status == "ok"]


def _band(trajectories: list[list[dict]]) -> dict:
    """Mean and std (ddof=1; 0 for one run) over runs of the trace at each integer epoch, and the
    band mean ± std drawn around it, clipped at 0 (a trace band below zero would be an artefact
    of few seeds, not a measurement)."""
    table = pd.concat([pd.DataFrame(t).set_index("epoch")["mean"] for t in trajectories], axis=1)
    mean, std = table.mean(axis=1).to_numpy(), table.std(axis=1, ddof=1).fillna(0.0).to_numpy()
    return {"epoch": table.index.to_numpy(dtype=int), "mean": mean, "std": std, "low": np.clip(mean - std, 0, None),
            "high": mean + std, "n": len(trajectories)}


def fig5_series(collected: Collected) -> dict[tuple, dict[str, dict]]:
    """{(dataset, arch, w_bits, a_bits): {method: band}} for LSQ and FPQ at the main p."""
    ok = _unique_ok(collected)
    ok = ok[ok.trajectory.map(bool)]
    out: dict[tuple, dict[str, dict]] = {}
    for method in FIG5_METHODS:
        rows = select(ok, method=method, p=collected.main_p if method == "fpq" else None)
        for key, group in rows.groupby(["dataset", "arch", "w_bits", "a_bits"]):
            out.setdefault(tuple(key), {})[method] = _band(list(group.trajectory))
    return out


def _panel_grid(keys) -> tuple[list[tuple], list[tuple]]:
    rows = sorted({(d, a) for d, a, _, _ in keys}, key=lambda k: (k[0], order_rank(ARCH_ORDER, k[1])))
    cols = sorted({(w, a) for _, _, w, a in keys}, key=lambda k: bits_rank(*k))
    return rows, cols


def hessian_figure(collected: Collected, out: Path) -> list[Path]:
    """Rows = dataset x arch, columns = bit settings; mean ± std band over seeds, clipped at 0."""
    series = fig5_series(collected)
    rows, cols = _panel_grid(series) if series else ([None], [None])
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.2 * len(cols), 3.2 * len(rows)), squeeze=False,
                             constrained_layout=True)
    if not series:
        axes[0, 0].text(0.5, 0.5, "no Hessian trajectories in the run index", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return _save(fig, out, "fig5_hessian")
    for i, (dataset, arch) in enumerate(rows):
        for j, (w, a) in enumerate(cols):
            ax = axes[i, j]
            panel = series.get((dataset, arch, w, a))
            if not panel:
                ax.set_axis_off()
                continue
            for method, band in panel.items():
                label = method_label(method) + (f" (p={collected.main_p:g})" if method == "fpq" else "")
                ax.plot(band["epoch"], band["mean"], color=COLORS[method], marker=".", label=f"{label}, n={band['n']}")
                ax.fill_between(band["epoch"], band["low"], band["high"], color=COLORS[method], alpha=0.2)
            ax.set_title(f"{arch_label(arch)}, {DATASET_LABELS.get(dataset, dataset)}, {bits_label(w, a)}", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("Hessian trace")
            ax.legend(fontsize=7, loc="upper right")
    return _save(fig, out, "fig5_hessian")


def fig1_bars(collected: Collected) -> dict[tuple, dict[str, tuple[float, float, int]]]:
    """{(dataset, arch, w_bits, a_bits): {method: (mean, std, n)}} of the logit variance; FP is the
    teacher of that (dataset, arch), FPQ at the main p."""
    ok = _unique_ok(collected)
    ok = ok[ok.output_variance.notna()]
    out: dict[tuple, dict] = {}
    quantized = ok[ok.method != "fp"]
    for (dataset, arch, w, a), _ in quantized.groupby(["dataset", "arch", "w_bits", "a_bits"]):
        bars = {}
        for method in FIG1_METHODS:
            key = dict(dataset=dataset, arch=arch, method=method)
            if method != "fp":
                key.update(w_bits=w, a_bits=a, p=collected.main_p if method == "fpq" else None)
            values = select(ok, **key).output_variance
            if len(values):
                bars[method] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                                len(values))
        out[(dataset, arch, int(w), int(a))] = bars
    return out


def variance_figure(collected: Collected, out: Path) -> list[Path]:
    bars = fig1_bars(collected)
    keys = sorted(bars, key=setting_rank)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(keys)), 3.5), constrained_layout=True)
    if not keys:
        ax.text(0.5, 0.5, "no output-variance results in the run index", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, out, "fig1_variance")
    width = 0.8 / len(FIG1_METHODS)
    for i, method in enumerate(FIG1_METHODS):
        values = [bars[k].get(method, (np.nan, 0.0, 0)) for k in keys]
        ax.bar(np.arange(len(keys)) + i * width, [v[0] for v in values], width, yerr=[v[1] for v in values],
               color=COLORS[method], label=method_label(method))
    labels = [f"{arch_label(a)}\n{DATASET_LABELS.get(d, d)}\n{bits_label(w, b)}" for d, a, w, b in keys]
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, labels, fontsize=7)
    ax.set_ylabel("output variance (logits)")
    ax.set_title("Output variance under Gaussian input noise (FP = the teacher)")
    ax.legend(fontsize=8)
    return _save(fig, out, "fig1_variance")


def build_figures(collected: Collected, out: Path) -> list[Path]:
    return hessian_figure(collected, out) + variance_figure(collected, out)
