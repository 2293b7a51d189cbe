from pathlib import Path

from fpq.budget import budget_report, load_timings, run_seconds
from fpq.grid import expand, load_workflow_config

REPO = Path(__file__).resolve().parent.parent


def test_budget_counts_the_jobs_of_the_dag_and_prices_them():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert "train_teacher       24 jobs" in report and "train_qat          390 jobs" in report
    total = float(report.split("total: ")[1].split(" GPU-hours")[0])
    runs = expand(config)
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    training = sum(run_seconds(r.config, timings) for r in runs.values()) / 3600
    assert training <= total <= training * 1.1


def test_sam_costs_two_passes_and_subsets_scale():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    runs = expand(config)
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    sam = runs["resnet18_cifar10_w4a4_lsq+sam_s0"].config
    lsq = runs["resnet18_cifar10_w4a4_lsq_s0"].config
    hessian_part = run_seconds(lsq, timings) - 200 * 5.68
    assert abs((run_seconds(sam, timings) - hessian_part) / (run_seconds(lsq, timings) - hessian_part) - 2) < 1e-9
