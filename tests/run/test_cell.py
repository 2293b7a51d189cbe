"""A run's identity is built once (fpq.run.cell.Cell): run ids, canonical cells, the grid's plan and its index."""
from pathlib import Path

import pytest
import torch

from fpq.config import ConfigError, load_config
from fpq.errors import DataError
from fpq.plan.grid import expand, load_workflow_config
from fpq.plan.index import RunIndex, read_index
from fpq.run.cell import Cell

REPO = Path(__file__).resolve().parents[2]


def test_a_cell_names_its_run_and_comes_back_from_its_config():
    cell = Cell("cifar100", "mobilenetv2", "lsq+sfp", 3, 3, 0.3, 2)
    assert cell.run_id == "mobilenetv2_cifar100_w3a3_lsq+sfp_p0.3_s2"
    assert Cell("cifar10", "resnet18", "fp", seed=1).run_id == "resnet18_cifar10_fp_s1"
    cfg = load_config({"arch": "mobilenetv2", "method": "lsq+sfp", "seed": 2, "teacher": "t.pt",
                       "data": {"dataset": "cifar100"}, "quant": {"w_bits": 3, "a_bits": 3, "sfp_p": 0.3}})
    assert Cell.from_config(cfg) == cell and Cell.from_dict(cell.as_dict()) == cell
    lsq = load_config({"arch": "resnet18", "method": "lsq", "teacher": "t.pt", "quant": {"w_bits": 2, "a_bits": 4}})
    assert Cell.from_config(lsq).p is None  # a method without SFP has no p, whatever quant.sfp_p says


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="fpq", w_bits=2, a_bits=4), "p must be given"),
    (dict(method="lsq", w_bits=2, a_bits=4, p=0.1), "p must be given"),
    (dict(method="fp", w_bits=2, a_bits=4), "no bit setting"),
    (dict(method="apot"), "not one of"),
])
def test_bad_cells_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Cell("cifar10", "resnet18", **kwargs)


def test_sfp_at_p_zero_is_the_method_without_sfp():
    assert Cell("cifar10", "resnet18", "fpq", 2, 4, 0.0).canonical() == Cell("cifar10", "resnet18", "lsq+csd", 2, 4)
    assert Cell("cifar10", "resnet18", "lsq+sfp", 2, 4, 0.0).canonical() == Cell("cifar10", "resnet18", "lsq", 2, 4)
    fpq = Cell("cifar10", "resnet18", "fpq", 2, 4, 0.1)
    assert fpq.canonical() is fpq


def test_ci_plan_trains_the_p_zero_point_once_and_shows_it_in_both_grids():
    plan = expand(load_workflow_config(REPO / "config" / "ci.yaml"))
    assert not [rid for rid in plan.runs if "_p0_" in rid]
    psweep = {cell.p: rid for cell, rid in plan.grids["psweep"] if cell.method == "fpq" and cell.seed == 0}
    assert psweep == {0.0: "resnet20_cifar10_w2a4_lsq+csd_s0", 0.1: "resnet20_cifar10_w2a4_fpq_p0.1_s0",
                      0.5: "resnet20_cifar10_w2a4_fpq_p0.5_s0"}
    assert ("resnet20_cifar10_w2a4_lsq+csd_s0" in {rid for _, rid in plan.grids["ablation"]})
    teachers = plan.ids("teacher")
    assert teachers == ["resnet20_cifar10_fp_s0", "resnet20_cifar10_fp_s1"]
    fpq = plan.runs["resnet20_cifar10_w2a4_fpq_p0.5_s1"]
    assert fpq.teacher_id == "resnet20_cifar10_fp_s1" and fpq.config.quant.sfp_p == 0.5
    assert fpq.config.teacher == "results/ci/runs/resnet20_cifar10_fp_s1/model.pt"
    assert sorted(plan.hessian_ids) == sorted(["resnet20_cifar10_w2a4_lsq_s0", "resnet20_cifar10_w2a4_lsq_s1",
                                               "resnet20_cifar10_w2a4_fpq_p0.1_s0", "resnet20_cifar10_w2a4_fpq_p0.1_s1"])
    assert len(plan.variance_ids) == 6
    for rid, run in plan.runs.items():  # one identity: the run id, the config's run_id and the cell agree
        assert rid == run.cell.run_id == run.config.run_id and Cell.from_config(run.config) == run.cell


def test_one_teacher_can_serve_every_seed():
    config = load_workflow_config(REPO / "config" / "ci.yaml", {"teacher_seed": 0})
    plan = expand(config)
    assert plan.ids("teacher") == ["resnet20_cifar10_fp_s0"]
    assert {run.teacher_id for run in plan.runs.values() if run.teacher_id} == {"resnet20_cifar10_fp_s0"}
    assert plan.runs["resnet20_cifar10_w2a4_lsq_s1"].config.seed == 1


def test_every_config_writes_to_its_own_folders():
    ci, paper = (load_workflow_config(REPO / "config" / f"{n}.yaml") for n in ("ci", "paper"))
    assert (ci["results"], ci["tables"], ci["figures"]) == ("results/ci", "tables/ci", "figures/ci")
    assert paper["results"] == "results/paper" and paper["tables"] == "tables/paper"
    named = load_workflow_config(REPO / "config" / "ci.yaml", {"name": "other"})
    assert named["results"] == "results/other"


def test_unknown_grid_names_are_refused():
    config = load_workflow_config(REPO / "config" / "ci.yaml")
    config["grids"]["mian"] = config["grids"]["main"]
    with pytest.raises(ConfigError, match="mian"):
        expand(config)


def test_index_round_trips_and_refuses_foreign_files(tmp_path):
    index = RunIndex.from_plan(expand(load_workflow_config(REPO / "config" / "ci.yaml")))
    path = tmp_path / "index.json"
    path.write_text(index.to_json())
    again = read_index(path)
    assert again == index
    assert {e.run_id for e in again.grid("psweep")} >= {"resnet20_cifar10_w2a4_lsq+csd_s0"}
    path.write_text('{"runs": []}')
    with pytest.raises(DataError, match="not an fpq run index"):
        read_index(path)
    with pytest.raises(DataError, match="does not exist"):
        read_index(tmp_path / "none.json")


def test_fpq_at_p_zero_takes_exactly_the_steps_of_lsq_csd():
    """The reason the two cells are one run: same loss, same gradients, same RNG use."""
    from fpq.models import create_model
    from fpq.run.step import train_step
    from fpq.run.train import make_objective, make_optimizer, prepare_student

    torch.manual_seed(0)
    teacher = create_model("resnet20", 10).eval()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    params = []
    for method, quant in (("fpq", {"sfp_p": 0.0}), ("lsq+csd", {})):
        cfg = load_config({"arch": "resnet20", "method": method, "teacher": "t.pt",
                           "quant": {"w_bits": 2, "a_bits": 4, **quant}})
        torch.manual_seed(1)
        student = prepare_student(cfg, teacher, x, torch.device("cpu"))
        objective = make_objective(cfg, student, teacher)
        optimizer, _ = make_optimizer(cfg, student)
        train_step(objective, optimizer, [p for p in student.parameters() if p.requires_grad], x, y, None)
        params.append([p.detach().clone() for p in student.parameters()] + [torch.rand(1)])  # RNG state too
    assert all(torch.equal(a, b) for a, b in zip(*params))
