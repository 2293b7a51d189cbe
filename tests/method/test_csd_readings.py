"""The paper's silent CSD choices as keys: how the taps' losses combine (`csd_reduce`) and where CSD
reads features (`csd_taps`), each against a hand computation on tiny tensors, each part of the run's
identity and of its run id."""
from __future__ import annotations

import json

import pytest
import torch

from fpq.cli import main
from fpq.config import effective_json, load_config
from fpq.method.distill import csd_loss
from fpq.method.pieces import Outputs
from fpq.models import create_model
from fpq.run.cell import Cell
from fpq.run.train import make_objective, prepare_student
from tests.conftest import qat_config, write_yaml


def hand_standardized(z: torch.Tensor, stats: str, eps: float) -> torch.Tensor:
    """Eq. 16 written out element by element: per (sample, channel) over HxW, or per channel over BxHxW."""
    out = torch.empty_like(z, dtype=torch.float64)
    b, c = z.shape[:2]
    for j in range(c):
        groups = [(i,) for i in range(b)] if stats == "sample" else [tuple(range(b))]
        for g in groups:
            v = z[list(g), j].double()
            mu, var = v.mean(), ((v - v.mean()) ** 2).mean()
            out[list(g), j] = (v - mu) / torch.sqrt(var + eps)
    return out


def squared(zs, zt, stats, eps=1e-5) -> list[torch.Tensor]:
    return [(hand_standardized(s, stats, eps) - hand_standardized(t, stats, eps)) ** 2 for s, t in zip(zs, zt)]


@pytest.fixture
def taps():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 4), (2, 5, 2, 2)]
    return ([torch.randn(*s, generator=g) for s in shapes], [torch.randn(*s, generator=g) * 3 + 1 for s in shapes])


@pytest.mark.parametrize("stats", ["sample", "batch"])
def test_each_reduction_is_its_formula(taps, stats):
    zs, zt = taps
    d2 = squared(zs, zt, stats)
    hand = {"sum": sum(float(d.mean()) for d in d2),  # the suite's reading: per-tap means, summed
            "mean": sum(float(d.mean()) for d in d2) / 2,  # the MSE reading: their mean over taps
            "elements": sum(float(d.sum()) / 2 for d in d2)}  # Eq. 17: squared norms over C, H, W; batch mean
    for reduce, want in hand.items():
        assert float(csd_loss(zs, zt, stats, reduce=reduce)) == pytest.approx(want, rel=1e-5), reduce
    assert hand["elements"] > hand["sum"] > hand["mean"]  # three different losses, not one spelled thrice


def test_the_term_is_lambda_times_the_reduction_and_its_taps_add_up_to_it(taps):
    zs, zt = taps
    quant = load_config({"arch": "resnet20", "method": "lsq+csd", "teacher": "t",
                         "quant": {"csd_lambda": 0.2, "csd_reduce": "mean"}}).quant
    from fpq.method.pieces import PIECES

    out = Outputs(None, features=zs, teacher_features=zt, record=True)
    value = PIECES["csd"].make_term(quant)(out)
    assert float(value) == pytest.approx(0.2 * float(csd_loss(zs, zt, reduce="mean")), rel=1e-6)
    assert float(out.detail["csd"].sum()) == pytest.approx(float(value), rel=1e-6)


def test_stage_taps_read_the_last_block_of_each_width(quick_teacher, mini_npz):
    cfg = load_config(qat_config(mini_npz, quick_teacher, "lsq+csd", (2, 4), csd_taps="stages"))
    teacher = create_model("resnet20", 10)
    teacher.load_state_dict(torch.load(quick_teacher, weights_only=False)["state_dict"])
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    student = prepare_student(cfg, teacher, x, torch.device("cpu"))
    objective = make_objective(cfg, student, teacher.eval())
    stages = [student.layers[2], student.layers[5], student.layers[8]]  # ResNet-20: 3 stages of 3 blocks
    assert student.stage_blocks() == stages
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: seen.setdefault(k, o)) for k, m in enumerate(stages)]
    with objective.student_taps.collect() as feats, objective.teacher_taps.collect() as t_feats:
        values, out = objective.parts(x, y)
        assert [f.shape[1] for f in feats] == [16, 32, 64] and len(t_feats) == 3
        assert all(f is seen[k] for k, f in enumerate(feats))  # the stage outputs themselves
        want = csd_loss(list(feats), list(t_feats))
    for h in hooks:
        h.remove()
    assert float(values["csd"].detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    with pytest.raises(ValueError, match="no `layers` of blocks"):
        from fpq.models.base import CifarModel

        CifarModel().stage_blocks()


def test_a_reading_is_part_of_the_cell_the_run_id_and_the_identity():
    def cfg(**quant):
        return load_config({"arch": "resnet18", "method": "fpq", "teacher": "t", "quant": {"w_bits": 2, "a_bits": 4,
                                                                                            **quant}})

    plain, mean, stages = cfg(), cfg(csd_reduce="mean", csd_lambda=0.2), cfg(csd_taps="stages")
    assert Cell.from_config(plain).run_id == "resnet18_cifar10_w2a4_fpq_p0.1_s0"  # the suite's reading: as before
    assert Cell.from_config(mean).run_id == "resnet18_cifar10_w2a4_fpq_p0.1_csd-l0.2-mean_s0"
    assert Cell.from_config(stages).reading == "csd_taps=stages"
    assert len({effective_json(c) for c in (plain, mean, stages)}) == 3
    assert "reading" not in Cell.from_config(plain).as_dict()  # result files of the default stay as they were
    twin = Cell.from_config(mean).__class__(**{**Cell.from_config(mean).as_dict(), "p": 0.0}).canonical()
    assert twin.method == "lsq+csd" and twin.reading == "csd_lambda=0.2,csd_reduce=mean"
    with pytest.raises(Exception, match="not a reading key of method 'lsq'"):
        Cell("cifar10", "resnet18", "lsq", 2, 4, reading="csd_reduce=mean")


def test_fpq_qat_takes_a_reading_from_set(quick_teacher, mini_npz, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", qat_config(mini_npz, quick_teacher, "lsq+csd", (2, 4), train=256,
                                                          test=100))
    assert main(["qat", "--config", str(config), "--set", "quant.csd_reduce=mean", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["quant"]["csd_reduce"] == "mean" and metrics["cell"]["reading"] == "csd_reduce=mean"
    assert main(["qat", "--config", str(config), "--set", "quant.csd_reduce=avg", "--out", str(tmp_path / "bad")]) == 2
