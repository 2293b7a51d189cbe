"""Figures are tested by their data: which runs each series holds, and how the panels are laid out."""
import struct
from pathlib import Path

import numpy as np
import pytest

from fpq.report.figures import fig1_bars, fig5_series, hessian_figure, variance_figure
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
