"""Figures are tested by their data: which runs each series holds, and how the panels are laid out."""
import struct
from pathlib import Path

import numpy as np
import pytest

from fpq.plan.grid import expand
from fpq.plan.index import RunIndex
from fpq.report.composition import composition_caption, composition_figure, composition_plot, composition_series
from fpq.report.curves import curve_series, curves_figure, curves_plot
from fpq.report.figures import (
    build_figures,
    fig1_bars,
    fig5_series,
    hessian_figure,
    hessian_plot,
    variance_figure,
    variance_plot,
)
from fpq.report.results import collect
from tests.fake_results import workflow_config, write_results

CELL = ("cifar10", "resnet18", 2, 4)


def trajectory(cell):
    """Trace 1000 * (1 + p) for FPQ (so each p is recognizable), 5000 for LSQ; seeds add 0, 100, 200."""
    level = 1000.0 * (1 + cell.p) if cell.p is not None else 5000.0
    return [{"epoch": e, "mean": level + 100.0 * cell.seed + e} for e in range(0, 3)]


def test_the_fpq_series_of_fig5_is_the_main_p_even_when_every_p_has_as_many_seeds(tmp_path):
    grids = {"psweep": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["fpq"],
                        "sfp_p": [0.0, 0.1, 0.5, 1.0]},
             "ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["lsq", "fpq"]}}
    # main p = 0.5, not the smallest p: a tie-broken "most common p" would pick 0.1
    config = workflow_config(tmp_path / "results", grids, quant={"sfp_p": 0.5})
    index = write_results(config, lambda c: 90.0, trajectory=trajectory)
    series = fig5_series(collect(tmp_path / "results", index))
    fpq, lsq = series[CELL]["fpq"], series[CELL]["lsq"]
    assert fpq["n"] == 3 and lsq["n"] == 3
    np.testing.assert_allclose(fpq["mean"], [1600.0, 1601.0, 1602.0])  # p = 0.5: 1500 + mean seed offset 100
    np.testing.assert_allclose(lsq["mean"], [5100.0, 5101.0, 5102.0])
    np.testing.assert_allclose(fpq["std"], [100.0] * 3)
    assert fpq["epoch"].dtype.kind == "i" and list(fpq["epoch"]) == [0, 1, 2]


def test_the_band_is_clipped_at_zero(tmp_path):
    grids = {"ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["lsq"]}}
    config = workflow_config(tmp_path / "results", grids)
    wild = lambda c: [{"epoch": 0, "mean": [1.0, 100.0, 1.0][c.seed]}]  # noqa: E731  mean 34, std 57
    index = write_results(config, lambda c: 90.0, trajectory=wild)
    band = fig5_series(collect(tmp_path / "results", index))[CELL]["lsq"]
    assert band["mean"][0] - band["std"][0] < 0
    assert band["low"][0] == 0.0 and band["high"][0] == pytest.approx(band["mean"][0] + band["std"][0])


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_fig5_is_a_grid_of_panels_rows_dataset_arch_columns_bits(tmp_path):
    archs = ["resnet18", "resnet50", "mobilenetv1", "mobilenetv2"]
    grids = {"main": {"datasets": ["cifar10", "cifar100"], "archs": archs, "bits": ["w4a4", "w2a4", "w2a2"],
                      "methods": ["lsq", "fpq"]}}
    config = workflow_config(tmp_path / "results", grids, seeds=[0])
    index = write_results(config, lambda c: 90.0, trajectory=trajectory)
    series = fig5_series(collect(tmp_path / "results", index))
    assert len(series) == 24
    path = hessian_figure(collect(tmp_path / "results", index), tmp_path / "fig")[0]
    width, height = png_size(path)
    assert height > 2 * width and width < 3000, (width, height)  # 8 rows x 3 columns, not one 24-panel row


def test_fig1_bars_are_fp_lsq_and_fpq_at_the_main_p(tmp_path):
    grids = {"psweep": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["lsq", "fpq"],
                        "sfp_p": [0.1, 0.5]}}
    config = workflow_config(tmp_path / "results", grids, variance={"methods": ["fp", "lsq", "fpq"]})
    value = {"fp": 1.0, "lsq": 3.0, "fpq": 2.0}
    index = write_results(config, lambda c: 90.0, variance=lambda c: value[c.method] + (c.p or 0.0) + c.seed)
    bars = fig1_bars(collect(tmp_path / "results", index))[CELL]
    assert bars["fp"] == (2.0, 1.0, 3) and bars["lsq"] == (4.0, 1.0, 3)
    assert bars["fpq"] == pytest.approx((3.1, 1.0, 3))  # p = 0.5 is not probed (main p only)
    assert variance_figure(collect(tmp_path / "results", index), tmp_path / "fig")[0].stat().st_size > 1000


def history(cell):
    """Test top-1 70 + epoch + seed, plus 5 for FPQ: mean 71 + epoch (+5), std 1 over seeds 0, 1, 2."""
    return [{"epoch": e, "test_acc": 70.0 + e + cell.seed + (5.0 if cell.method == "fpq" else 0.0)} for e in (1, 2, 3)]


ABLATION = {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"],
            "methods": ["lsq", "lsq+sfp", "lsq+csd", "fpq"]}


def test_training_curves_are_mean_and_std_per_method_over_the_ablation_cells(tmp_path):
    grids = {"ablation": ABLATION,
             "main": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w4a4"], "methods": ["lsq", "fpq"]}}
    config = workflow_config(tmp_path / "results", grids)
    failing = lambda c: None if c.method == "lsq+csd" and c.seed == 0 else 90.0  # noqa: E731
    collected = collect(tmp_path / "results", write_results(config, failing, history=history))
    series = curve_series(collected)
    assert list(series) == [CELL]  # the main grid's W4A4 cell only when asked
    panel = series[CELL]
    assert list(panel) == [("lsq", None), ("lsq+sfp", 0.1), ("lsq+csd", None), ("fpq", 0.1)]  # the paper's order
    np.testing.assert_allclose(panel[("lsq", None)]["mean"], [72.0, 73.0, 74.0])
    np.testing.assert_allclose(panel[("fpq", 0.1)]["mean"], [77.0, 78.0, 79.0])
    np.testing.assert_allclose(panel[("lsq", None)]["std"], [1.0] * 3)
    assert panel[("lsq+csd", None)]["n"] == 2 and list(panel[("lsq", None)]["epoch"]) == [1, 2, 3]
    assert set(curve_series(collected, ("ablation", "main"))) == {CELL, ("cifar10", "resnet18", 4, 4)}
    paths = curves_figure(collected, tmp_path / "fig")
    assert [p.name for p in paths] == ["training_curves.png", "training_curves.pdf"]
    caption = curves_plot(collected)._suptitle.get_text()
    assert "mean over seeds" in caption and "± 1 std" in caption


def parts_history(cell) -> list[dict]:
    """A history whose loss parts are known: CE 2, 1.5; CSD 10 + seed, 5 (two taps, 1 : 3)."""
    csd = cell.method in ("lsq+csd", "fpq")
    rows = []
    for e, (ce, term) in enumerate(((2.0, 10.0 + cell.seed), (1.5, 5.0)), start=1):
        parts = {"steps": 4, "ce": ce, **({"csd": term, "csd/taps": [term / 4, 3 * term / 4]} if csd else {})}
        rows.append({"epoch": e, "test_acc": 50.0, "train_loss": ce + (term if csd else 0.0), "loss_parts": parts})
    return rows


def test_the_loss_composition_is_the_mean_of_each_part_over_seeds_and_the_taps_at_the_last_epoch(tmp_path):
    config = workflow_config(tmp_path / "results", {"ablation": ABLATION})
    collected = collect(tmp_path / "results", write_results(config, lambda c: 90.0, history=parts_history))
    series = composition_series(collected)
    assert sorted(k[-1] for k in series) == ["fpq", "lsq", "lsq+csd", "lsq+sfp"]
    fpq = series[("cifar10", "resnet18", 2, 4, "fpq")]
    assert fpq["n"] == 3 and list(fpq["parts"]) == ["ce", "csd"]
    np.testing.assert_allclose(fpq["parts"]["csd"], [11.0, 5.0])  # seeds 0, 1, 2: 10, 11, 12 at epoch 1
    np.testing.assert_allclose(fpq["taps"]["csd"], [1.25, 3.75])
    assert "csd" not in series[("cifar10", "resnet18", 2, 4, "lsq")]["parts"]
    assert "FPQ ResNet-18 W2A4: CSD 3.3× CE" in composition_caption(collected)
    paths = composition_figure(collected, tmp_path / "fig")
    assert [p.name for p in paths] == ["loss_composition.png", "loss_composition.pdf"]
    assert "FPQ, ResNet-18 W2A4 (n=3): CSD" in figure_text(composition_plot(collected))


def figure_text(fig) -> str:
    texts = [t.get_text() for t in fig.texts] + [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_ylabel()] + [t.get_text() for t in ax.texts]
        if ax.get_legend():
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return "\n".join(texts)


@pytest.mark.parametrize("written, counts", [(True, "0 ok, 15 failed, 0 missing"), (False, "0 ok, 0 failed, 15 missing")],
                         ids=["every run failed (a diverged teacher)", "no run yet"])
def test_figures_build_from_any_index_and_say_why_a_panel_is_empty(tmp_path, written, counts):
    config = workflow_config(tmp_path / "results", {"ablation": ABLATION})
    index = write_results(config, lambda c: None) if written else RunIndex.from_plan(expand(config))
    collected = collect(tmp_path / "results", index)
    paths = build_figures(collected, tmp_path / "fig")
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in ("fig5_hessian", "fig1_variance",
                                                                        "training_curves", "loss_composition")
                                                   for e in ("png", "pdf", "caption.rst"))
    for plot, why in ((hessian_plot, "no Hessian trajectories"), (variance_plot, "no output-variance results"),
                      (curves_plot, "no training histories of the ablation grid"),
                      (composition_plot, "no run in the index recorded its loss parts")):
        text = figure_text(plot(collected))
        assert why in text and f"15 runs in the run index: {counts}" in text, text


def test_fig5_says_what_its_band_is_and_that_its_probes_differ_from_the_final_trace(tmp_path):
    grids = {"ablation": {**ABLATION, "methods": ["lsq", "fpq"]}}
    config = workflow_config(tmp_path / "results", grids)
    probed = lambda c: [{**point, "probes": 8} for point in trajectory(c)]  # noqa: E731
    index = write_results(config, lambda c: 90.0, trace=lambda c: 1000.0, trajectory=probed, probes=32)
    text = figure_text(hessian_plot(collect(tmp_path / "results", index)))
    assert "Line: mean over seeds (n in each legend); band: ± 1 std over them, clipped at 0." in text
    assert "8 probes a point; the final models' trace (claims) uses 32." in text and "LSQ, n=3" in text


def test_fig1_states_sigma_what_its_error_bars_are_and_has_readable_ticks(tmp_path):
    grids = {"ablation": {**ABLATION, "methods": ["lsq", "fpq"]}}
    config = workflow_config(tmp_path / "results", grids, teacher_seed=0)
    value = {"fp": 0.00004, "lsq": 0.00016, "fpq": 0.0001}
    index = write_results(config, lambda c: 90.0, variance=lambda c: value[c.method] * (1 + 0.1 * c.seed), sigma=0.1)
    fig = variance_plot(collect(tmp_path / "results", index))
    text = figure_text(fig)
    assert "σ = 0.1" in text and "error bars: ± 1 std" in text and "mean over n seeds" in text
    assert "FP (n=1)" in text and "LSQ (n=3)" in text and "FPQ (n=3)" in text
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(len(t) <= 4 for t in ticks), ticks  # e.g. 0, 0.5, 1, 1.5 (not 0.00016)
    assert ax.get_ylabel() == "output variance (logits) (×10⁻⁴)"


def test_a_one_epoch_run_reads_as_points_with_bars_on_a_whole_epoch_axis(tmp_path):
    """One QAT epoch: no band of zero width on an axis from 0.945 to 1.05, but a point per method with
    its ± 1 std bar, side by side, and one tick on epoch 1."""
    config = workflow_config(tmp_path / "results", {"ablation": ABLATION})
    one = lambda cell: [{"epoch": 1, "test_acc": 70.0 + cell.seed}]  # noqa: E731
    fig = curves_plot(collect(tmp_path / "results", write_results(config, lambda c: 90.0, history=one)))
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1] and ax.get_xlim() == (0.0, 2.0)
    assert len(ax.containers) == 4  # an error bar per method
    assert not [c for c in ax.collections if "PolyCollection" in type(c).__name__]  # no band
    xs = [c.lines[0].get_xdata()[0] for c in ax.containers]
    assert xs == sorted(xs) and len(set(xs)) == 4 and all(abs(x - 1) < 0.2 for x in xs)  # side by side at epoch 1
    bars = [c.lines[2][0].get_segments()[0] for c in ax.containers]
    assert all(seg[0][1] == pytest.approx(70.0) and seg[1][1] == pytest.approx(72.0) for seg in bars)  # 71 ± 1
