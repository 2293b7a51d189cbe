"""Fig. 5 (Hessian trace during QAT, LSQ vs FPQ, mean ± std band) and Fig. 1 (output variance)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fpq.results import collect  # noqa: E402

COLORS = {"lsq": "tab:blue", "fpq": "tab:red", "fp": "tab:gray"}


def _save(fig, out: Path, name: str) -> list[Path]:
    from fpq.io import atomic_write

    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        atomic_write(path, lambda f, ext=ext: fig.savefig(f, format=ext, bbox_inches="tight", dpi=150))
        paths.append(path)
    plt.close(fig)
    return paths


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _trajectory_band(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames = [pd.DataFrame(t).set_index("epoch")["mean"] for t in group.trajectory if t]
    table = pd.concat(frames, axis=1)
    return table.index.to_numpy(), table.mean(axis=1).to_numpy(), table.std(axis=1, ddof=1).fillna(0).to_numpy()


def hessian_figure(runs: pd.DataFrame, out: Path) -> list[Path]:
    ok = runs[(runs.status == "ok") & runs.method.isin(["lsq", "fpq"])]
    ok = ok[ok.trajectory.map(lambda t: bool(t))]
    cells = sorted({tuple(r) for r in ok[["dataset", "arch", "w_bits", "a_bits"]].itertuples(index=False)})
    fig, axes = plt.subplots(1, max(1, len(cells)), figsize=(4.5 * max(1, len(cells)), 3.5), squeeze=False)
    if not cells:
        _empty(axes[0, 0], "no Hessian trajectories in the results")
    for ax, (dataset, arch, w, a) in zip(axes[0], cells):
        cell = ok[(ok.dataset == dataset) & (ok.arch == arch) & (ok.w_bits == w) & (ok.a_bits == a)]
        for method, group in cell.groupby("method"):
            if method == "fpq" and group.p.nunique() > 1:
                group = group[group.p == group.p.mode().iloc[0]]
            x, mean, std = _trajectory_band(group)
            ax.plot(x, mean, color=COLORS[method], label=f"{method.upper()} (n={len(group)})")
            ax.fill_between(x, mean - std, mean + std, color=COLORS[method], alpha=0.2)
        ax.set_title(f"{arch} {dataset} W{w}A{a}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("Hessian trace (Hutchinson)")
        ax.legend()
    return _save(fig, out, "fig5_hessian")


def variance_figure(runs: pd.DataFrame, out: Path) -> list[Path]:
    """Bars per (arch, dataset, bits): the FP teacher, LSQ and FPQ, mean ± std over seeds."""
    ok = runs[(runs.status == "ok") & runs.output_variance.notna()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if ok.empty:
        _empty(ax, "no output-variance results")
        return _save(fig, out, "fig1_variance")
    quantized = ok[ok.w_bits < 32]
    groups = sorted({(r.arch, r.dataset, r.w_bits, r.a_bits) for r in quantized.itertuples()}) or sorted(
        {(r.arch, r.dataset, 32, 32) for r in ok.itertuples()})
    methods = [m for m in ("fp", "lsq", "fpq") if m in set(ok.method)]
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        means, stds = [], []
        for arch, dataset, w, a in groups:
            sel = ok[(ok.method == method) & (ok.arch == arch) & (ok.dataset == dataset)]
            if method != "fp":
                sel = sel[(sel.w_bits == w) & (sel.a_bits == a)]
            means.append(sel.output_variance.mean() if len(sel) else np.nan)
            stds.append(sel.output_variance.std(ddof=1) if len(sel) > 1 else 0.0)
        ax.bar(np.arange(len(groups)) + i * width, means, width, yerr=stds, color=COLORS[method],
               label=method.upper())
    labels = [f"{arch}\n{dataset}" + ("" if w == 32 else f"\nW{w}A{a}") for arch, dataset, w, a in groups]
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, labels, fontsize=7)
    ax.set_ylabel("output variance (logits)")
    ax.set_title("Output variance under Gaussian input noise (FP = the teacher)")
    ax.legend()
    return _save(fig, out, "fig1_variance")


def build_figures(results: Path, out: Path) -> list[Path]:
    runs = collect(results).runs
    return hessian_figure(runs, out) + variance_figure(runs, out)
