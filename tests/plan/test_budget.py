from pathlib import Path

import pytest

from fpq.plan.budget import budget_report, load_timings, run_seconds, timings_from_bench
from fpq.plan.grid import expand, load_workflow_config

REPO = Path(__file__).resolve().parents[2]


def test_budget_counts_the_jobs_of_the_dag_and_prices_them():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert "train_teacher       24 jobs" in report and "train_qat          387 jobs" in report
    total = float(report.split("total: ")[1].split(" GPU-hours")[0])
    runs = expand(config).runs
    timings = load_timings(REPO / "config" / "epoch_seconds.yaml")
    training = sum(run_seconds(r.config, timings) for r in runs.values()) / 3600
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


def _bench(path="fpq", methods=("fp", "lsq", "fpq")):
    rows = [{"model": "resnet18", "method": m, "path": p, "s_per_epoch": t, "runtime": {"compile": True}}
            for m, t in zip(methods, (1.0, 2.0, 2.5)) for p in ("plain", path)]
    return {"device": "NVIDIA H100", "torch": "2.14.1", "batch": 256, "rows": rows}


def test_timings_from_a_benchmark_replace_measured_archs_and_keep_the_rest():
    previous = load_timings(REPO / "config" / "epoch_seconds.yaml")
    new = timings_from_bench(_bench(), previous)
    assert {k: new["archs"]["resnet18"][k] for k in ("fp", "qat", "qat_teacher")} == \
        {"fp": 1.0, "qat": 2.0, "qat_teacher": 2.5}
    assert new["archs"]["resnet18"]["source"] == new["card"] and "H100" in new["card"] and "compile" in new["card"]
    assert new["archs"]["resnet50"] == {"source": previous["card"], **previous["archs"]["resnet50"]}
    cfg = expand(load_workflow_config(REPO / "config" / "paper.yaml")).runs["resnet18_cifar10_w2a4_fpq_p0.1_s0"].config
    assert run_seconds(cfg, new) < run_seconds(cfg, previous)


def test_timings_from_a_benchmark_refuse_an_incomplete_one():
    with pytest.raises(ValueError, match="lacks"):
        timings_from_bench(_bench(methods=("fp", "lsq", "kd")))
    with pytest.raises(ValueError, match="no rows of path"):
        timings_from_bench(_bench(), path="compile=false")


def test_jobs_per_gpu_that_pay_are_counted_in_the_budget(tmp_path):
    from fpq.plan.budget import concurrency_from_bench

    config = load_workflow_config(REPO / "config" / "paper.yaml")
    timings_path = REPO / "config" / "epoch_seconds.yaml"
    bench = {"concurrency": [{"model": "mobilenetv2", "jobs": k, "speedup": s} for k, s in ((1, 1.0), (2, 1.6), (4, 1.5))]
             + [{"model": "resnet18", "jobs": 2, "speedup": 1.02}]}
    table = concurrency_from_bench(bench)
    assert table == {"mobilenetv2": {"jobs": 2, "speedup": 1.6}}  # ResNet-18's 2% is noise
    timings = {**load_timings(timings_path), "concurrency": table}
    shared = tmp_path / "timings.yaml"
    shared.write_text(__import__("yaml").safe_dump(timings))
    before, after = budget_report(config, timings_path), budget_report(config, shared)
    total = lambda report: float(report.split("total: ")[1].split(" GPU-hours")[0])  # noqa: E731
    assert total(after) < total(before)
    assert "mobilenetv2: 2 jobs per GPU (FPQ_JOBS_PER_GPU=2" in after
