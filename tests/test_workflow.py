"""The Snakemake DAG: the paper grid, config validation, GPU slots, and the CI config end to end."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fpq.grid import expand, final_measurements, load_workflow_config

REPO = Path(__file__).resolve().parent.parent


def snakemake(*args, cwd=REPO, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def job_counts(output: str) -> dict:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_of_the_paper_config_lists_the_complete_grid():
    out = snakemake("-n", "--configfile", "config/paper.yaml", "--config", "results=/nonexistent/results")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout)
    # 2 datasets x 4 archs x 3 seeds teachers; main grid 2x4x3 bits x5 methods x3 seeds = 360,
    # plus ablation (lsq+sfp, lsq+csd: 6), p sweep (6 new p x 3 seeds: 18) and SAM (2 archs x 3: 6).
    assert counts["train_teacher"] == 24
    assert counts["train_qat"] == 360 + 6 + 18 + 6
    assert counts["measure_hessian"] == 2 * 4 * 3 * 2 * 3  # lsq, fpq at p=0.1 for every cell
    assert counts["probe_variance"] == 24 + 2 * 4 * 3 * 2 * 3
    assert counts["build_tables"] == 1 and counts["plot_figures"] == 1


def test_lint_is_clean():
    out = snakemake("--lint")
    assert out.returncode == 0 and "Congratulations" in out.stdout + out.stderr, out.stdout + out.stderr


def _ci_config() -> dict:
    return yaml.safe_load((REPO / "config" / "ci.yaml").read_text())


@pytest.mark.parametrize("change, key", [
    (lambda c: c.update(epochs=3), "epochs"),
    (lambda c: c["grids"]["main"].update(bits=["w1a4"]), "w1a4"),
    (lambda c: c["grids"]["main"].update(bits=["w4a9"]), "w4a9"),
    (lambda c: c["grids"]["main"].update(archs=["vgg16"]), "vgg16"),
    (lambda c: c["grids"]["main"].update(methods=["apot"]), "apot"),
    (lambda c: c["grids"]["psweep"].update(sfp_p=[0.1, 1.5]), "1.5"),
    (lambda c: c["quant"].update(sfp_p=-0.2), "sfp_p"),
    (lambda c: c["qat"].update(lr=-1), "lr"),
    (lambda c: c["quant"].update(w_bit=4), "w_bit"),
])
def test_invalid_config_is_rejected_before_any_job(tmp_path, change, key):
    config = _ci_config()
    config["results"] = str(tmp_path / "results")
    change(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    out = snakemake("--cores", "1", "--configfile", str(path))
    assert out.returncode != 0
    assert key in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_grid_expansion_shares_teachers_and_names_runs():
    config = load_workflow_config(REPO / "config" / "ci.yaml")
    runs = expand(config)
    teachers = [r for r in runs.values() if r.teacher_id is None]
    assert [t.run_id for t in teachers] == ["resnet20_cifar10_fp_s0", "resnet20_cifar10_fp_s1"]
    assert "resnet20_cifar10_w2a4_fpq_p0.1_s0" in runs and "resnet20_cifar10_w2a4_lsq_s1" in runs
    fpq = runs["resnet20_cifar10_w2a4_fpq_p0.5_s1"]
    assert fpq.teacher_id == "resnet20_cifar10_fp_s1" and fpq.config.quant.sfp_p == 0.5
    assert fpq.config.teacher.endswith("runs/resnet20_cifar10_fp_s1/model.pt")
    hessian, variance = final_measurements(config, runs)
    assert sorted(hessian) == sorted(["resnet20_cifar10_w2a4_lsq_s0", "resnet20_cifar10_w2a4_lsq_s1",
                                      "resnet20_cifar10_w2a4_fpq_p0.1_s0", "resnet20_cifar10_w2a4_fpq_p0.1_s1"])
    assert len(variance) == 6


GPU_SNAKEFILE = """
rule all:
    input: "a.txt", "b.txt"

rule probe:
    output: "{name}.txt"
    resources: gpu=1
    shell: "fpq gpu-slot --hold 3 > {output}"
"""


def test_two_jobs_at_once_under_gpu_2_get_different_devices(tmp_path):
    (tmp_path / "Snakefile").write_text(GPU_SNAKEFILE)
    env = {"FPQ_GPU_SLOTS": "2", "FPQ_GPU_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    out = snakemake("--cores", "2", "--resources", "gpu=2", cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    devices = {(tmp_path / f).read_text().strip() for f in ("a.txt", "b.txt")}
    assert devices == {"0", "1"}


@pytest.mark.workflow
def test_ci_config_end_to_end(tmp_path):
    """Every stage on the real mini CIFAR-10 on CPU; then a config change reruns only its runs."""
    dirs = [f"results={tmp_path}/results", f"tables={tmp_path}/tables", f"figures={tmp_path}/figures"]
    out = snakemake("--cores", "2", "--configfile", "config/ci.yaml", "--config", *dirs, timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    tables = tmp_path / "tables"
    for name in ("table1_sam", "table2_ablation", "table3_psweep", "table4_cifar10"):
        assert (tables / f"{name}.md").stat().st_size > 0 and (tables / f"{name}.tex").is_file()
    t4 = (tables / "table4_cifar10.md").read_text()
    for method in ("fp", "pact", "lsq", "lsq+", "kd", "fpq"):
        assert re.search(rf"\| resnet20 \| (FP|W2A4) +\| {re.escape(method)} +\| \d+\.\d\d ± \d+\.\d\d +\| 2 ", t4), method
    t2 = (tables / "table2_ablation.md").read_text()
    assert all(f"| {m} " in t2 for m in ("lsq", "lsq+sfp", "lsq+csd", "fpq"))
    t3 = (tables / "table3_psweep.md").read_text()
    assert all(f"| {p} " in t3 for p in ("0", "0.1", "0.5"))
    assert "lsq+sam" in (tables / "table1_sam.md").read_text()
    claims = (tables / "claims.md").read_text()
    assert all(f"## {i}." in claims for i in range(1, 6)) and "Missing runs" not in claims
    for fig in ("fig5_hessian", "fig1_variance"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figures" / f"{fig}.{ext}").stat().st_size > 1000
    again = snakemake("-n", "--configfile", "config/ci.yaml", "--config", *dirs)
    assert "Nothing to be done" in again.stdout + again.stderr
    changed = _ci_config()
    changed["quant"]["kd_temperature"] = 2.0
    changed.update(results=f"{tmp_path}/results", tables=f"{tmp_path}/tables", figures=f"{tmp_path}/figures")
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    rerun = snakemake("-n", "--configfile", str(path))
    counts = job_counts(rerun.stdout)
    assert counts["train_qat"] == 2 and "train_teacher" not in counts  # the two KD runs only
    assert "resnet20_cifar10_w2a4_kd_s0" in rerun.stdout and "resnet20_cifar10_w2a4_kd_s1" in rerun.stdout


def test_a_given_configfile_is_not_merged_into_the_default(tmp_path):
    config = _ci_config()
    config["grids"] = {"main": config["grids"]["main"]}  # config/config.yaml has an ablation grid
    config["results"] = str(tmp_path / "results")
    path = tmp_path / "only_main.yaml"
    path.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "--configfile", str(path))
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout)["train_qat"] == 10 and "lsq+sfp" not in out.stdout
