"""The order jobs start in (fpq.plan.order): teachers, QAT seed by seed, then the measurements."""
import re

import pytest
import yaml

from fpq.plan.grid import expand, load_workflow_config
from fpq.plan.order import STAGES, job_priority, stage_priority
from tests.test_workflow import REPO, snakemake


def plan_of(name: str, **overrides):
    config = load_workflow_config(REPO / "config" / f"{name}.yaml", overrides)
    return config, expand(config)


def test_every_teacher_first_then_each_seed_trained_and_measured_before_the_next():
    """A seed's measurements come before any run of a later seed: a time box leaves whole, measured seeds."""
    config, plan = plan_of("paper")
    seeds = config["seeds"]
    teacher = [job_priority(plan, rid, "teacher", seeds) for rid in plan.ids("teacher")]
    qat = {rid: job_priority(plan, rid, "qat", seeds) for rid in plan.ids("qat")}
    measure = {rid: job_priority(plan, rid, "measure", seeds) for rid in plan.hessian_ids + plan.variance_ids}
    assert min(teacher) > max(qat.values()) and min(teacher) > max(measure.values())
    seed = {rid: plan.runs[rid].cell.seed for rid in plan.runs}
    for rid, value in measure.items():
        later = [q for r, q in qat.items() if seeds.index(seed[r]) > seeds.index(seed[rid])]
        same = [q for r, q in qat.items() if seed[r] == seed[rid]]
        assert value > max(later, default=-1) and value > max(same), rid
    assert [stage_priority(s) for s in STAGES] == sorted((stage_priority(s) for s in STAGES), reverse=True)


@pytest.mark.parametrize("seeds", [[0, 1, 2], [5, 3, 4]])
def test_qat_runs_start_seed_by_seed_in_the_configs_order(seeds):
    config, plan = plan_of("paper", seeds=seeds)
    by_priority = sorted(plan.ids("qat"), key=lambda rid: -job_priority(plan, rid, "qat", seeds))
    started = [plan.runs[rid].cell.seed for rid in by_priority]
    assert started == sorted(started, key=seeds.index)  # all of the first seed, then the second ...
    assert started[0] == seeds[0] and started[-1] == seeds[-1]


def test_within_a_seed_the_dearer_method_first():
    config, plan = plan_of("paper")
    priority = {plan.runs[rid].cell.method: job_priority(plan, rid, "qat", config["seeds"])
                for rid in plan.ids("qat") if plan.runs[rid].cell.seed == 0}
    assert priority["lsq+sam"] > priority["fpq"] > priority["lsq+csd"] > priority["lsq"]
    assert priority["lsq+csd"] == priority["lsq+sfp"] == priority["kd"]
    assert priority["lsq"] == priority["pact"] == priority["lsq+"]


def test_an_unknown_stage_is_refused():
    config, plan = plan_of("reference")
    with pytest.raises(ValueError, match="stage 'train'"):
        job_priority(plan, plan.ids("qat")[0], "train", config["seeds"])


def test_the_snakefile_gives_each_job_its_priority(tmp_path):
    """The dry run prints every job's priority: the reference config's next sitting, pair by pair
    (seed 3 is finished by the block of 2026-12-04, reference/blocks: not planned again)."""
    config = yaml.safe_load((REPO / "config" / "reference.yaml").read_text())
    config["data"]["cifar10"]["path"] = str(REPO / "tests" / "data" / "cifar10-fixture.npz")  # no .devdata here
    config["results"] = str(tmp_path / "results")
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump(config))
    out = snakemake("-n", "--configfile", str(tmp_path / "reference.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    wildcards: run=(\S+)\n    priority: (\d+)$",
                      out.stdout, re.M)
    assert len(jobs) == 1 + 10 + 10 + 11  # teacher, 10 students, their Hessians, 11 variance probes
    assert not [rid for _, rid, _ in jobs if rid.endswith("_s3")]
    config, plan = plan_of("reference")
    stage = {"train_teacher": "teacher", "train_qat": "qat", "measure_hessian": "measure", "probe_variance": "measure"}
    for rule, rid, printed in jobs:
        assert int(printed) == job_priority(plan, rid, stage[rule], config["seeds"]), (rule, rid)
    students = sorted((job for job in jobs if job[0] == "train_qat"), key=lambda job: -int(job[2]))
    assert [rid for _, rid, _ in students[:4]] == ["resnet18_cifar10_w2a4_fpq_p0.1_s0", "resnet18_cifar10_w2a4_lsq_s0",
                                                    "resnet18_cifar10_w2a4_fpq_p0.1_s1", "resnet18_cifar10_w2a4_lsq_s1"]
