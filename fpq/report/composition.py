"""The loss-composition figure: what each method's training loss was made of, epoch by epoch (CE
and each piece's term, mean over seeds), and the CSD term by tap at the last epoch.

It reads the `loss_parts` each QAT run's metrics.json history records (fpq.run.composition); a
run made before they were recorded, or on a CUDA-graph step, has none and is left out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fpq.method.registry import is_float
from fpq.report.plots import color, empty, footer, plt, save
from fpq.report.results import Collected, main_cells
from fpq.run.cell import arch_label, bits_label, method_label, setting_rank

NAME = "loss_composition"
TITLE = "Loss composition: CE and each method's extra terms by epoch, CSD by tap at the last epoch"


def _parts(history: list[dict]) -> dict[str, list[float]]:
    """part -> its mean by epoch (a scalar part only), from one run's history; {} without parts."""
    rows = [h.get("loss_parts") for h in history]
    if not rows or any(r is None for r in rows):
        return {}
    names = [k for k, v in rows[0].items() if k != "steps" and not isinstance(v, list)]
    return {k: [float(r[k]) for r in rows] for k in names}


def composition_series(collected: Collected) -> dict[tuple, dict]:
    """{(dataset, arch, w, a, method): {"parts": {part: mean by epoch over seeds}, "taps": {term: mean
    per tap at the last epoch}, "n": seeds}} for the ok QAT runs that recorded their loss parts."""
    frame = main_cells(collected)
    ok = frame[(frame.status == "ok") & frame.history.map(bool).astype(bool) & ~frame.method.map(is_float).astype(bool)]
    out = {}
    for key, group in ok.groupby(["dataset", "arch", "w_bits", "a_bits", "method"]):
        runs = [_parts(h) for h in group.history]
        runs = [r for r in runs if r]
        if not runs:
            continue
        epochs = min(len(next(iter(r.values()))) for r in runs)
        parts = {k: list(np.mean([r[k][:epochs] for r in runs if k in r], axis=0)) for k in runs[0]}
        last = [h[-1]["loss_parts"] for h in group.history if h and h[-1].get("loss_parts")]
        taps = {k.split("/")[0]: list(np.mean([r[k] for r in last if k in r], axis=0))
                for k in last[0] if k.endswith("/taps")} if last else {}
        out[(key[0], key[1], int(key[2]), int(key[3]), key[4])] = {"parts": parts, "taps": taps, "n": len(runs)}
    return out


def composition_plot(collected: Collected):
    series = composition_series(collected)
    fig, (by_epoch, by_tap) = plt.subplots(1, 2, figsize=(11.0, 4.0), constrained_layout=True)
    footer(fig, collected)
    if not series:
        empty(by_epoch, "no run in the index recorded its loss parts", collected)
        by_tap.axis("off")
        return fig
    for (dataset, arch, w, a, method), s in sorted(series.items(), key=lambda kv: setting_rank(kv[0][:4])):
        where = f"{method_label(method)}, {arch_label(arch)} {bits_label(w, a)} (n={s['n']})"
        for part, values in s["parts"].items():
            style = "-" if part == "ce" else "--"
            by_epoch.plot(range(1, len(values) + 1), values, style, color=color(method), marker="o", markersize=3,
                          label=f"{where}: {part.upper()}")
        for term, values in s["taps"].items():
            by_tap.plot(range(1, len(values) + 1), values, "-", color=color(method), marker=".",
                        label=f"{where}: {term.upper()}")
    by_epoch.set(xlabel="QAT epoch", ylabel="loss part (mean over the epoch's images)", yscale="log")
    by_epoch.set_title("CE (solid) and the extra terms (dashed), mean over seeds", fontsize=9)
    by_epoch.legend(fontsize=6)
    by_tap.set(xlabel="tap (forward order)", ylabel="the term's share at the tap")
    by_tap.set_title("Each tap's share of the term at the last epoch", fontsize=9)
    if by_tap.lines:
        by_tap.legend(fontsize=6)
    else:
        by_tap.text(0.5, 0.5, "no per-tap term", ha="center", va="center", transform=by_tap.transAxes)
    return fig


def composition_caption(collected: Collected) -> str:
    shares = []
    for (_, arch, w, a, method), s in sorted(composition_series(collected).items()):
        extra = {k: v[-1] for k, v in s["parts"].items() if k != "ce"}
        if extra and s["parts"]["ce"][-1] > 0:
            ratio = ", ".join(f"{k.upper()} {v / s['parts']['ce'][-1]:.1f}× CE" for k, v in extra.items())
            shares.append(f"{method_label(method)} {arch_label(arch)} {bits_label(w, a)}: {ratio}")
    text = "Left: each part of the training loss by epoch (log scale), mean over seeds. Right: a term by tap."
    return text + (" At the last epoch: " + "; ".join(shares) + "." if shares else "")


def composition_figure(collected: Collected, out: Path) -> list[Path]:
    return save(composition_plot(collected), out, NAME)

