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
    monkeypatch.setitem(METHODS, "lsq+kd2", MethodSpec("lsq+kd2", "lsq", ("kd",), label="LSQ+KD2",
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


# A new method piece: one plug-in file (tests/plugins/weight_noise.py), loaded by FPQ_PLUGINS in every
# process the run starts (the fpq command, each Snakemake job), and no other file edited.
PLUGIN = REPO / "tests" / "plugins" / "weight_noise.py"
PLUGIN_ENV = {"FPQ_PLUGINS": str(PLUGIN)}


def _python(code: str, env: dict = PLUGIN_ENV):
    import os
    import subprocess

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def test_a_new_piece_file_brings_its_key_method_schema_and_weight_hook():
    out = _python('''
        import torch
        from fpq.config import load_config, effective_dict
        from fpq.method.registry import METHODS
        from fpq.plan.grid import workflow_schema
        from fpq.plan.order import _method_weight
        from fpq.run.train import prepare_student
        from fpq.models import create_model

        cfg = load_config({"arch": "resnet20", "method": "lsq+wn", "teacher": "t.pt",
                           "quant": {"w_bits": 2, "a_bits": 4, "wnoise_sigma": 0.25}})
        assert cfg.quant.wnoise_sigma == 0.25 and "wnoise_sigma" in effective_dict(cfg)["quant"]
        lsq = load_config({"arch": "resnet20", "method": "lsq", "teacher": "t.pt", "quant": {"wnoise_sigma": 0.25}})
        assert "wnoise_sigma" not in effective_dict(lsq)["quant"]  # not a piece of LSQ: not its identity
        schema = workflow_schema()
        assert schema["properties"]["quant"]["properties"]["wnoise_sigma"]["default"] == 0.5
        assert "lsq+wn" in schema["$defs"]["grid"]["properties"]["methods"]["items"]["enum"]
        assert _method_weight("lsq+wn") == 1 and METHODS["lsq+wn"].pieces == ("wnoise",)
        try:
            load_config({"arch": "resnet20", "quant": {"wnoise_sigma": 0.0}})
        except Exception as err:
            assert str(err) == "quant.wnoise_sigma: must be > 0, got 0.0", err
        else:
            raise AssertionError("a sigma of 0 was accepted")

        torch.manual_seed(0)
        teacher = create_model("resnet20", 10)
        student = prepare_student(cfg, teacher, torch.randn(8, 3, 32, 32), torch.device("cpu"))
        layer = student.conv_layers()[1]
        s = layer.w_quant.step_size()
        student.train()
        noise = torch.stack([layer.quantize_weight() - layer.w_quant(layer.weight) for _ in range(200)])
        assert abs(float((noise / s).std()) - 0.25) < 0.01  # sigma * s, per output channel
        student.eval()
        assert torch.equal(layer.quantize_weight(), layer.w_quant(layer.weight))  # never at evaluation
        print("ok")
    ''')
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
    without = _python("from fpq.method.registry import METHODS; print('lsq+wn' in METHODS)", env={"FPQ_PLUGINS": ""})
    assert without.stdout.strip() == "False"  # nothing of the piece lives outside its file


@pytest.mark.workflow
def test_the_new_piece_trains_through_a_snakemake_grid_and_the_cli(tmp_path):
    import json
    import os
    import subprocess

    import yaml

    config = {"seeds": [0], "results": f"{tmp_path}/results", "tables": f"{tmp_path}/tables",
              "figures": f"{tmp_path}/figures",
              "data": {"cifar10": {"source": "npz", "path": "tests/data/cifar10-fixture.npz", "train_subset": 200,
                                   "test_subset": 100}},
              "teacher": {"epochs": 1, "batch_size": 100}, "qat": {"epochs": 1, "batch_size": 100},
              "quant": {"calib_images": 16, "wnoise_sigma": 0.3},
              "runtime": {"device": "cpu", "threads": 1, "progress": False},
              "hessian": {"methods": []}, "variance": {"methods": []},
              "grids": {"ablation": {"datasets": ["cifar10"], "archs": ["resnet20"], "bits": ["w2a4"],
                                     "methods": ["lsq", "lsq+wn"]}}}
    path = tmp_path / "wn.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, **PLUGIN_ENV}
    out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(path)], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stderr[-4000:]
    run = tmp_path / "results" / "runs" / "resnet20_cifar10_w2a4_lsq+wn_s0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["config"]["quant"]["wnoise_sigma"] == 0.3
    md = (tmp_path / "tables" / "table2_ablation.md").read_text()
    lines = [[c.strip() for c in line.split("|")] for line in md.splitlines() if line.startswith("| ")]
    column = lines[0].index("Method")
    assert [r[column] for r in lines if "ResNet-20" in r] == ["LSQ", "LSQ+WN"]  # the spec's row, then the new one

    cli = subprocess.run(["fpq", "qat", "--config-json", json.dumps({**metrics["config"], "run_id": "cli"}),
                          "--set", "quant.wnoise_sigma=0.1", "--out", str(tmp_path / "cli")], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    again = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert again["status"] == "ok" and again["config"]["quant"]["wnoise_sigma"] == 0.1
