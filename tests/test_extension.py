"""Extension costs one file: a new architecture is one model module, a new method one registry entry.

docs/architecture.md promises it; this test is the contributor's walk through it. A dummy
architecture is written as one new module (read by the registry from its source, as the models of
fpq/models are), a dummy method is one `MethodSpec`, and nothing else is edited: the workflow
schema accepts both, the budget prices the model without a timing row (saying it is an estimate),
the plan, the tables (its row after the spec's own, under its label) and one real training run on
CPU take them as they come.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from fpq.method.registry import METHODS, MethodSpec
from fpq.models import MODEL_INFO, MODELS, discover, model_rank

REPO = Path(__file__).resolve().parent.parent

MODEL_FILE = '''
    """TinyNet, a contributor's new architecture: this file is all it takes."""
    import torch.nn.functional as F
    from torch import nn

    from fpq.models import register_model
    from fpq.models.base import CifarModel


    class TinyNet(CifarModel):
        def __init__(self, num_classes: int):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


    @register_model(label="TinyNet-8")
    def tinynet(num_classes: int) -> TinyNet:
        """TinyNet: 0.0015M parameters at 10 classes."""
        return TinyNet(num_classes)
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """The dummy model as one module file, found by the registry's source scan; the dummy method as
    one registry entry. Both are gone after the test."""
    folder = tmp_path / "contrib_models"
    folder.mkdir()
    (folder / "tinynet.py").write_text(textwrap.dedent(MODEL_FILE))
    modules, infos = discover(folder, "contrib_models")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in modules:
        monkeypatch.setitem(MODELS, name, modules[name])
        monkeypatch.setitem(MODEL_INFO, name, infos[name])
    monkeypatch.setitem(METHODS, "lsq+kd2", MethodSpec("lsq+kd2", "lsq", kd=True, label="LSQ+KD2",
                                                       description="a contributor's method: LSQ with KD"))
    yield modules
    sys.modules.pop("contrib_models.tinynet", None)
    sys.modules.pop("contrib_models", None)


def test_the_registry_reads_a_new_model_file_without_importing_it(plugins):
    assert plugins == {"tinynet": "contrib_models.tinynet"}
    assert "contrib_models.tinynet" not in sys.modules
    assert MODEL_INFO["tinynet"].label == "TinyNet-8" and MODEL_INFO["tinynet"].rank is None
    assert sorted(MODELS, key=model_rank)[-1] == "tinynet"  # after the paper's models and ResNet-20


def test_a_new_model_and_method_are_valid_names_in_every_config(plugins):
    from fpq.config import load_config
    from fpq.plan.grid import workflow_schema

    cfg = load_config({"arch": "tinynet", "method": "lsq+kd2", "teacher": "t.pt"})
    assert (cfg.arch, cfg.method) == ("tinynet", "lsq+kd2")
    grid = workflow_schema()["$defs"]["grid"]["properties"]
    assert "tinynet" in grid["archs"]["items"]["enum"] and "lsq+kd2" in grid["methods"]["items"]["enum"]


def test_the_budget_prices_a_model_without_a_timing_row_and_says_it_is_an_estimate(plugins, tmp_path):
    from fpq.plan.budget import budget_report
    from tests.fake_results import workflow_config

    config = workflow_config(tmp_path / "results", {"ablation": {"archs": ["tinynet"], "bits": ["w2a4"],
                                                                 "methods": ["lsq", "lsq+kd2"]}})
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert "tinynet" in report and "estimate" in report


def test_the_tables_show_every_method_the_grid_trains_under_its_label(plugins, tmp_path):
    from fpq.report.tables import build_tables
    from tests.fake_results import workflow_config, write_results

    config = workflow_config(tmp_path / "results", {"ablation": {"archs": ["tinynet", "resnet18"], "bits": ["w2a4"],
                                                                 "methods": ["lsq", "lsq+kd2", "fpq"]}})
    index = write_results(config, lambda cell: 90.0 + len(cell.method) / 10)
    build_tables(tmp_path / "results", index, tmp_path / "tables", REPO / "config" / "reference_tables.csv")
    md = (tmp_path / "tables" / "table2_ablation.md").read_text()
    lines = [[c.strip() for c in line.split("|")] for line in md.splitlines() if line.startswith("| ")]
    column = lines[0].index("Method")
    assert [r[column] for r in lines if "TinyNet-8" in r] == ["LSQ", "FPQ", "LSQ+KD2"]  # the spec's, then the new one
    assert md.index("ResNet-18") < md.index("TinyNet-8")  # the paper's models first


def test_one_real_run_of_the_new_model_and_method_on_cpu(plugins, tmp_path, tiny_npz):
    """The training loop never branches on a name: teacher and QAT run of the contributed pair."""
    import json

    from fpq.config import load_config
    from fpq.run.train import run

    base = {"arch": "tinynet", "seed": 0, "data": {"source": "npz", "path": str(tiny_npz)},
            "optim": {"epochs": 1, "batch_size": 20}, "runtime": {"device": "cpu", "threads": 1, "progress": False}}
    run(load_config({**base, "method": "fp", "run_id": "teacher"}), tmp_path / "teacher")
    run(load_config({**base, "method": "lsq+kd2", "run_id": "qat", "teacher": str(tmp_path / "teacher" / "model.pt"),
                     "quant": {"w_bits": 2, "a_bits": 4, "calib_images": 20}}), tmp_path / "qat")
    metrics = json.loads((tmp_path / "qat" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["cell"]["arch"] == "tinynet" and metrics["cell"]["method"] == "lsq+kd2"
