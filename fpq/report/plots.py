"""What every figure shares: the Agg backend, saving as PNG and PDF, a colour per method, the
mean ± std band over seeds, a panel that says why it is empty, and tick labels for people.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files: no display, the same on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from fpq.io import atomic_write  # noqa: E402
from fpq.report.results import Collected  # noqa: E402
from fpq.report.stamp import stamp  # noqa: E402
from fpq.run.cell import DATASET_LABELS, arch_label, arch_rank, bits_label, bits_rank  # noqa: E402

COLORS = {"fp": "tab:gray", "pact": "tab:brown", "lsq": "tab:blue", "lsq+": "tab:cyan", "kd": "tab:olive",
          "lsq+sam": "tab:purple", "lsq+sfp": "tab:orange", "lsq+csd": "tab:green", "fpq": "tab:red"}
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def color(method: str) -> str:
    return COLORS.get(method, "black")


def save(fig, out: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        atomic_write(path, lambda f, ext=ext: fig.savefig(f, format=ext, bbox_inches="tight", dpi=150))
        paths.append(path)
    plt.close(fig)
    return paths


def footer(fig, collected: Collected):
    """The provenance stamp under the figure, small (saving with a tight box keeps it); returns fig."""
    width = max(60, int(fig.get_figwidth() * 22))  # characters of 6 pt text across the figure
    fig.text(0.5, 0.0, textwrap.fill(stamp(collected).line(), width), ha="center", va="top", fontsize=6,
             color="dimgray")
    return fig


def band(series: list[pd.Series], floor: float | None = None) -> dict:
    """Mean and std (ddof=1; 0 for one run) over runs at each epoch (the series' index), and the band
    mean ± std drawn around it, clipped at `floor` where one is given."""
    table = pd.concat(series, axis=1)
    mean, std = table.mean(axis=1).to_numpy(), table.std(axis=1, ddof=1).fillna(0.0).to_numpy()
    low = mean - std if floor is None else np.clip(mean - std, floor, None)
    return {"epoch": table.index.to_numpy(dtype=int), "mean": mean, "std": std, "low": low, "high": mean + std,
            "n": len(series)}


def panel_title(dataset, arch, w_bits, a_bits) -> str:
    return f"{arch_label(arch)}, {DATASET_LABELS.get(dataset, dataset)}, {bits_label(w_bits, a_bits)}"


def band_panel(ax, lines: list[tuple[str, str, dict]], title: str, ylabel: str | None, legend_loc: str) -> None:
    """One panel of mean ± std bands against epoch: `lines` are (label, method, band(...))."""
    epochs = sorted({int(e) for _, _, line in lines for e in line["epoch"]})
    for i, (label, method, line) in enumerate(lines):
        text = f"{label}, n={line['n']}"
        if len(epochs) == 1:  # one epoch: points with ± 1 std bars, side by side, not a band of no width
            x = line["epoch"] + (i - (len(lines) - 1) / 2) * 0.06
            ax.errorbar(x, line["mean"], yerr=[line["mean"] - line["low"], line["high"] - line["mean"]], fmt="o",
                        capsize=3, color=color(method), label=text)
            continue
        ax.plot(line["epoch"], line["mean"], color=color(method), marker=".", label=text)
        ax.fill_between(line["epoch"], line["low"], line["high"], color=color(method), alpha=0.2)
    ax.set_title(title, fontsize=9)
    if len(epochs) == 1:  # an axis a whole epoch wide either side, its one tick on the epoch
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc=legend_loc)


def band_figure(series: dict, lines_of, ylabel: str, legend_loc: str, suptitle: str, empty_why: str,
                collected: Collected):
    """Band panels, rows dataset x arch and columns bit settings in the paper's order, from
    {(dataset, arch, w_bits, a_bits): panel}; `lines_of(panel)` gives a panel's (label, method, band)
    lines. With no series, one empty panel saying why."""
    rows, cols = panel_grid(series) if series else ([None], [None])
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.2 * len(cols), 3.2 * len(rows) + 0.6), squeeze=False,
                             constrained_layout=True)
    footer(fig, collected)
    if not series:
        empty(axes[0, 0], empty_why, collected)
        return fig
    fig.suptitle(suptitle, fontsize=8)
    for i, (dataset, arch) in enumerate(rows):
        for j, (w, a) in enumerate(cols):
            panel = series.get((dataset, arch, w, a))
            if not panel:
                axes[i, j].set_axis_off()
                continue
            band_panel(axes[i, j], lines_of(panel), panel_title(dataset, arch, w, a), ylabel if j == 0 else None,
                       legend_loc)
    return fig


def panel_grid(keys) -> tuple[list[tuple], list[tuple]]:
    """Panel rows (dataset, arch) and columns (w_bits, a_bits) of (dataset, arch, w_bits, a_bits) keys,
    in the paper's order."""
    rows = sorted({(d, a) for d, a, _, _ in keys}, key=lambda k: (k[0], arch_rank(k[1])))
    cols = sorted({(w, a) for _, _, w, a in keys}, key=lambda k: bits_rank(*k))
    return rows, cols


def runs_line(collected: Collected) -> str:
    """'13 runs in the run index: 0 ok, 1 failed, 12 missing', what an empty panel says."""
    counts = collected.runs.status.value_counts()
    parts = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("ok", "failed", "missing"))
    return f"{len(collected.runs)} runs in the run index: {parts}"


def empty(ax, why: str, collected: Collected) -> None:
    """An empty panel that says why: no data of this kind, and what the index holds."""
    ax.text(0.5, 0.5, f"{why}\n({runs_line(collected)})", ha="center", va="center", wrap=True)
    ax.set_axis_off()


def readable_ticks(ax, axis: str, largest: float, label: str) -> str:
    """Tick labels without long zero runs: values below 0.01 (or from 10,000) are shown scaled, and the
    axis label says by what (×10⁻⁴). Returns the label set.

    >>> fig, ax = plt.subplots(); readable_ticks(ax, "y", 0.00016, "variance")
    'variance (×10⁻⁴)'
    >>> plt.close(fig)
    """
    exponent = math.floor(math.log10(largest)) if largest > 0 and (largest < 0.01 or largest >= 1e4) else 0
    scale = 10.0 ** exponent
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v / scale:.3g}"))
    text = label + (f" (×10{str(exponent).translate(SUPERSCRIPT)})" if exponent else "")
    getattr(ax, f"set_{axis}label")(text)
    return text
