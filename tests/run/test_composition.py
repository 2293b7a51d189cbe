"""What a run's loss is made of: per-epoch parts that add up to the logged loss, the per-tap CSD
detail, SFP's fired share and the per-part gradient norms (fpq.run.composition)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from fpq.config import load_config
from fpq.method.registry import METHODS
from fpq.models import create_model
from fpq.run.composition import gradient_norms, weights_of
from fpq.run.train import make_objective, prepare_student, run
from tests.conftest import qat_config


@pytest.mark.parametrize("method, terms", [("fpq", ["ce", "csd"]), ("kd", ["ce", "kd"]), ("lsq+sam", ["ce"])])
def test_each_epochs_loss_parts_add_up_to_its_train_loss(quick_teacher, mini_npz, tmp_path, method, terms):
    cfg = load_config(qat_config(mini_npz, quick_teacher, method, (2, 4), epochs=2, train=300, test=100))
    metrics = run(cfg, tmp_path)
    for row in metrics["history"]:
        parts = row["loss_parts"]
        assert [k for k in parts if k != "steps" and "/" not in k] == terms
        assert parts["steps"] == 3  # 300 images in batches of 128: the last batch of 44 counts by its images
        assert sum(parts[k] for k in terms) == pytest.approx(row["train_loss"], rel=1e-5)
        assert set(row["grad_norms"]) == set(terms) and all(v >= 0 for v in row["grad_norms"].values())
    if "csd" in terms:
        for row in metrics["history"]:
            taps = row["loss_parts"]["csd/taps"]
            assert len(taps) == len(create_model("resnet20", 10).conv_layers())
            assert sum(taps) == pytest.approx(row["loss_parts"]["csd"], rel=1e-5)
            assert 0.0 <= row["sfp_fired"] <= 1.0
    log = (tmp_path / "train.log").read_text()
    assert all(f" {t} " in log.splitlines()[-1] for t in terms[1:])  # the epoch line names every term
    assert json.loads((tmp_path / "metrics.json").read_text())["history"][0]["loss_parts"]["ce"] > 0


def test_sfp_fired_is_the_share_of_gates_that_perturbed(quick_teacher, mini_npz, tmp_path):
    def fired(p: float):
        cfg = load_config(qat_config(mini_npz, quick_teacher, "lsq+sfp", (2, 4), train=256, test=100, sfp_p=p))
        return run(cfg, tmp_path / str(p))["history"][0].get("sfp_fired")

    assert fired(1.0) == 1.0
    assert 0.0 < fired(0.5) < 1.0  # 2 steps x 18 gates: all or none at p = 0.5 has odds of 2^-35
    assert fired(0.0) is None  # p = 0 draws no gate at all


def probe_setup(teacher_file, npz, method: str, **quant):
    """(config, student in train mode, its objective, a batch x, y) on the quick teacher."""
    cfg = load_config(qat_config(npz, teacher_file, method, (2, 4), **quant))
    teacher = create_model("resnet20", 10)
    teacher.load_state_dict(torch.load(teacher_file, weights_only=False)["state_dict"])
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    student = prepare_student(cfg, teacher, x, torch.device("cpu")).train()
    return cfg, student, make_objective(cfg, student, teacher.eval()), x, y


def test_the_gradient_probe_is_each_parts_own_gradient_and_leaves_the_run_as_it_was(quick_teacher, mini_npz):
    cfg, student, objective, x, y = probe_setup(quick_teacher, mini_npz, "lsq+csd")
    bn = {n: b.clone() for n, b in student.named_buffers()}
    rng = torch.get_rng_state()
    norms = gradient_norms(objective, student, x, y)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(b, bn[n]) for n, b in student.named_buffers())  # BN statistics as they were
    ce = F.cross_entropy(student(x), y)
    grads = torch.autograd.grad(ce, weights_of(student))
    direct = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert norms["ce"] == pytest.approx(float(direct), rel=1e-5)
    assert METHODS[cfg.method].pieces == ("csd",) and norms["csd"] > 0


def test_the_probe_leaves_no_count_for_the_next_epoch(quick_teacher, mini_npz):
    """The probe's forward draws SFP gates; they are not the next epoch's steps (else a resumed run,
    whose process has no probe before its first epoch, reports another share than an uninterrupted one)."""
    from fpq.method.perturb import StochasticFeaturePerturbation
    from fpq.run.composition import epoch_composition

    _, student, objective, x, y = probe_setup(quick_teacher, mini_npz, "fpq", sfp_p=0.5)
    gates = [m for m in student.modules() if isinstance(m, StochasticFeaturePerturbation)]
    student(x)  # an epoch's step: one draw per gate
    row = epoch_composition(objective, student, (x, y))
    assert "sfp_fired" in row and "grad_norms" in row
    assert [g.draws for g in gates] == [0] * len(gates)
