import re
from pathlib import Path

import pytest

from fpq.plan.budget import budget_report, load_timings, run_seconds, timings_from_summary
from fpq.plan.grid import expand, load_workflow_config

REPO = Path(__file__).resolve().parents[2]


def test_budget_counts_the_jobs_of_the_dag_and_prices_them():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert "train_teacher       24 jobs" in report and "train_qat          387 jobs" in report
    total = float(report.split("total: ")[1].split(" GPU-hours")[0])
    runs = expand(config).runs
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    from fpq.plan.budget import gpu_share

    # GPU time: a run's seconds times the GPU share its arch's measured jobs per GPU gives it
    training = sum(run_seconds(r.config, timings) * gpu_share(timings, r.config.arch) for r in runs.values()) / 3600
    assert training <= total <= training * 1.1


def test_sam_costs_two_passes_and_subsets_scale():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    runs = expand(config).runs
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    sam = runs["resnet18_cifar10_w4a4_lsq+sam_s0"].config
    lsq = runs["resnet18_cifar10_w4a4_lsq_s0"].config
    epochs = 200 * timings["archs"]["resnet18"]["qat"]
    assert sam.hessian.every == 0 and lsq.hessian.every == 10  # the trajectory: hessian.methods only
    assert run_seconds(sam, timings) == pytest.approx(2 * epochs)  # two passes per step
    assert run_seconds(lsq, timings) > epochs  # one pass, plus the trajectory


def test_jobs_per_gpu_that_pay_are_counted_in_the_budget(tmp_path):
    from fpq.plan.budget import concurrency_from_summary

    config = load_workflow_config(REPO / "config" / "paper.yaml")
    timings_path = REPO / "config" / "epoch_seconds.yaml"
    sharing = {"mobilenetv2": [{"jobs": k, "speedup": s, "mps": m} for k, s, m in ((1, 1.0, False), (2, 1.6, True),
                                                                                  (4, 1.5, False))],
               "resnet18": [{"jobs": 1, "speedup": 1.0}, {"jobs": 2, "speedup": 1.02}]}
    previous = {"concurrency": {"resnet18": {"jobs": 4, "speedup": 2.0}}}
    table = concurrency_from_summary(sharing, previous)
    assert table == {"mobilenetv2": {"jobs": 2, "speedup": 1.6, "mps": True}}  # ResNet-18's 2% is noise: its old row goes
    timings = {**load_timings(timings_path), "concurrency": table}
    shared = tmp_path / "timings.yaml"
    shared.write_text(__import__("yaml").safe_dump(timings))
    before, after = budget_report(config, timings_path), budget_report(config, shared)
    total = lambda report: float(report.split("total: ")[1].split(" GPU-hours")[0])  # noqa: E731
    assert total(after) < total(before)
    assert "mobilenetv2: 2 jobs per GPU (FPQ_JOBS_PER_GPU=2, FPQ_MPS=1" in after


def test_a_measured_hessian_point_prices_the_trajectory():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    cfg = expand(config).runs["resnet18_cifar10_w2a4_fpq_p0.1_s0"].config
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    row = dict(timings["archs"]["resnet18"])
    row.pop("hessian_point", None)
    plain = {**timings, "archs": {**timings["archs"], "resnet18": row}}
    measured = {**timings, "archs": {**timings["archs"], "resnet18": {**row, "hessian_point": 0.0}}}
    training = 200 * row["qat_teacher"]
    assert run_seconds(cfg, measured) == pytest.approx(training)  # a free point: the epochs alone
    assert run_seconds(cfg, plain) > training


def test_the_budget_says_where_its_numbers_come_from():
    """The wall-time line names the --gpus it divides by; an estimated row is listed as an estimate
    only (not also as timed elsewhere); the timings' torch is said to be the measurement's."""
    config = load_workflow_config(REPO / "config" / "ci.yaml")  # resnet20: an estimated row
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert "h wall on 4 GPUs (--gpus 4, the default) if perfectly packed" in report
    assert "h wall on 2 GPUs (--gpus 2) if" in budget_report(config, REPO / "config" / "epoch_seconds.yaml", gpus=2)
    assert "timed elsewhere" not in report and "seconds/epoch of resnet20 (H100" in report
    header = report.splitlines()[1]
    measured = r"torch 2\.11\.0\+cu130 \(the torch they were measured with; installed here: (torch \S+|no torch)\)$"
    assert re.search(measured, header), header
    paper = budget_report(load_workflow_config(REPO / "config" / "paper.yaml"), REPO / "config" / "epoch_seconds.yaml")
    elsewhere = next(line for line in paper.splitlines() if "timed elsewhere" in line)
    estimated = next(line for line in paper.splitlines() if line.startswith("note: estimates"))
    assert "mobilenetv2" in elsewhere and not any(a in elsewhere for a in ("resnet50", "mobilenetv1"))
    assert "resnet50" in estimated and "mobilenetv1" in estimated
