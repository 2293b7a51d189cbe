"""Training on the CIFAR-10 fixture (tests/data/cifar10-fixture.npz), on CPU."""

import pytest
import torch

from fpq.config import load_config
from fpq.run.build import load_model
from fpq.run.train import run
from tests.conftest import qat_config, teacher_config

pytestmark = pytest.mark.slow


def test_teacher_learns_and_records_everything(trained_teacher):
    from fpq.io import read_json

    m = read_json(trained_teacher.parent / "metrics.json")
    # 10 classes: chance is 10%. 8 epochs on the fixture's 2,000 images reach about 31% on its 500
    # test images (binomial standard error about 2 points): 25% is 7 standard errors above chance.
    assert m["final"]["top1"] > 25.0
    assert m["best"]["top1"] >= m["final"]["top1"] and "label" in m["best"]
    assert len(m["history"]) == 8 and m["history"][0]["lr"] == pytest.approx(0.1)
    for key in ("cell", "config", "code", "packages", "device", "precision", "wall_time_s"):
        assert key in m
    assert m["status"] == "ok" and m["stage"] == "teacher"
    assert m["cell"] == {"dataset": "cifar10", "arch": "resnet20", "method": "fp", "w_bits": 32, "a_bits": 32,
                         "p": None, "seed": 0}
    assert m["config"]["optim"]["epochs"] == 8 and m["config"]["seed"] == 0
    assert torch.__version__.startswith(m["packages"]["torch"].split("+")[0])
    assert m["precision"]["bitwise_reproducible"] is True and m["device"]["type"] == "cpu"
    assert read_json(trained_teacher.parent / "config.json") == m["config"]


def test_lsq_w4a4_stays_near_the_teacher_and_w2a2_drops(trained_teacher, mini_npz, tmp_path):
    from fpq.io import read_json

    teacher_acc = read_json(trained_teacher.parent / "metrics.json")["final"]["top1"]
    common = dict(train=2000, test=500)  # the whole fixture, as the teacher
    w4 = run(load_config(qat_config(mini_npz, trained_teacher, "lsq", (4, 4), **common)), tmp_path / "w4")
    w2 = run(load_config(qat_config(mini_npz, trained_teacher, "lsq", (2, 2), **common)), tmp_path / "w2")
    # Stated margin: one epoch of W4A4 LSQ from the teacher stays within 8 points of it.
    assert w4["final"]["top1"] >= teacher_acc - 8.0
    # W2A2 really quantizes: a clear drop below both the teacher and W4A4.
    assert w2["final"]["top1"] < w4["final"]["top1"] - 3.0
    assert w2["final"]["top1"] < teacher_acc - 5.0


@pytest.mark.parametrize("method", ["lsq", "lsq+sfp", "lsq+csd", "fpq", "pact", "lsq+", "kd", "lsq+sam"])
def test_every_method_finishes_with_a_trace_trajectory(quick_teacher, mini_npz, tmp_path, method):
    cfg = qat_config(mini_npz, quick_teacher, method, (2, 4), train=256, test=100)
    cfg["hessian"] = {"every": 1, "probes": 2, "batch_size": 16}
    m = run(load_config(cfg), tmp_path)
    assert [h["epoch"] for h in m["hessian_trajectory"]] == [0, 1]
    assert all(h["probes"] == 2 and h["stderr"] >= 0 for h in m["hessian_trajectory"])
    assert m["cell"]["method"] == method and (m["cell"]["w_bits"], m["cell"]["a_bits"]) == (2, 4)
    model, cfg_back = load_model(tmp_path / "model.pt")
    assert cfg_back.method == method
    # runtime.kernels is triton by default; a CPU run takes the torch path, and asks nothing of Triton
    assert m["precision"]["kernels"] == "triton" and m["precision"]["kernels_in_force"] == "torch"
    assert "kernels:" not in (tmp_path / "train.log").read_text()


def test_fpq_with_p0_and_lambda0_is_plain_lsq(quick_teacher, mini_npz, tmp_path):
    lsq = run(load_config(qat_config(mini_npz, quick_teacher, "lsq", (2, 4), train=256, test=100)), tmp_path / "a")
    fpq = run(load_config(qat_config(mini_npz, quick_teacher, "fpq", (2, 4), train=256, test=100,
                                     sfp_p=0.0, csd_lambda=0.0)), tmp_path / "b")
    assert fpq["history"][0]["train_loss"] == lsq["history"][0]["train_loss"]
    assert fpq["final"]["top1"] == lsq["final"]["top1"]
    a, _ = load_model(tmp_path / "a" / "model.pt")
    b, _ = load_model(tmp_path / "b" / "model.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_sfp_and_csd_change_training(quick_teacher, mini_npz, tmp_path):
    lsq = run(load_config(qat_config(mini_npz, quick_teacher, "lsq", (2, 4), train=256, test=100)), tmp_path / "a")
    fpq = run(load_config(qat_config(mini_npz, quick_teacher, "fpq", (2, 4), train=256, test=100)), tmp_path / "b")
    assert fpq["history"][0]["train_loss"] != lsq["history"][0]["train_loss"]


def test_same_config_and_seed_give_identical_metrics(mini_npz, tmp_path):
    cfg = load_config(teacher_config(mini_npz, epochs=1, train=256, test=100))
    a, b = run(cfg, tmp_path / "a"), run(cfg, tmp_path / "b")
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
    assert a["final"] == b["final"]
    other = run(load_config({**teacher_config(mini_npz, epochs=1, train=256, test=100), "seed": 1}), tmp_path / "c")
    assert other["history"][0]["train_loss"] != a["history"][0]["train_loss"]


def test_hessian_and_variance_commands_write_results(quick_teacher, tmp_path, capsys):
    from fpq.cli import main
    from fpq.io import read_json

    assert main(["hessian", "--model", str(quick_teacher), "--out", str(tmp_path / "h.json"), "--probes", "3",
                 "--batches", "2", "--batch-size", "16", "--eigen-iters", "3", "--device", "cpu"]) == 0
    h = read_json(tmp_path / "h.json")
    assert h["trace"]["probes"] == 3 and h["images"] == 32 and "top_eigenvalue" in h
    assert h["run_id"] == "teacher" and {"config", "packages", "device", "precision", "wall_time_s"} <= set(h)
    assert main(["variance", "--model", str(quick_teacher), "--out", str(tmp_path / "v.json"), "--images", "20",
                 "--samples", "3", "--device", "cpu"]) == 0
    v = read_json(tmp_path / "v.json")
    assert v["images"] == 20 and v["samples"] == 3 and v["logit_variance"] > 0 and v["sigma"] == 0.1
    assert "Hessian trace" in capsys.readouterr().out
