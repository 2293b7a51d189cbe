"""The readings study (config/readings.yaml): it dry-runs, `fpq budget` prices it in sittings, and its
whole DAG runs on the CPU fixture, building the Readings table and the claims page's Readings section."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
READINGS = ["LSQ+SFP", "LSQ+CSD", "LSQ+CSD (csd_lambda=0.05)", "LSQ+CSD (csd_lambda=0.2)",
            "LSQ+CSD (csd_reduce=mean)", "FPQ (csd_reduce=mean)"]


def snakemake(*args, timeout=1500):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


def test_the_readings_study_dry_runs_and_is_priced_in_sittings():
    out = snakemake("-n", "--configfile", "config/readings.yaml", "--config", "data={cifar10: {source: torchvision}}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^train_qat\s+42$", out.stdout, re.M)  # 7 readings x 6 seeds
    budget = subprocess.run(["fpq", "budget", "--configfile", "config/readings.yaml"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert budget.returncode == 0 and "in sittings of 660 s" in budget.stdout and "sittings" in budget.stdout.split(
        "in sittings")[-1]
    runs = subprocess.run(["fpq", "runs", "--configfile", "config/readings.yaml"], cwd=REPO, capture_output=True,
                          text=True, timeout=120).stdout.split()
    assert runs[:8] == ["resnet18_cifar10_fp_s0", "resnet18_cifar10_w2a4_lsq_s3", "resnet18_cifar10_w2a4_lsq+sfp_p0.1_s3",
                        "resnet18_cifar10_w2a4_lsq+csd_s3", "resnet18_cifar10_w2a4_lsq+csd_csd-l0.2_s3",
                        "resnet18_cifar10_w2a4_lsq+csd_csd-l0.05_s3", "resnet18_cifar10_w2a4_lsq+csd_csd-mean_s3",
                        "resnet18_cifar10_w2a4_fpq_p0.1_csd-mean_s3"]  # seed 3 of every reading first


@pytest.mark.workflow
def test_the_readings_dag_builds_the_readings_table_on_the_cpu_fixture(tmp_path):
    config = yaml.safe_load((REPO / "config" / "readings.yaml").read_text())
    config.update(seeds=[3, 4], blocks="", results=f"{tmp_path}/results", tables=f"{tmp_path}/tables",
                  figures=f"{tmp_path}/figures",
                  data={"cifar10": {"source": "npz", "path": "tests/data/cifar10-fixture.npz", "train_subset": 300,
                                    "test_subset": 100}},
                  teacher={"epochs": 1, "batch_size": 100}, qat={"epochs": 2, "batch_size": 100},
                  quant={"sfp_p": 0.1, "calib_images": 16}, runtime={"device": "cpu", "threads": 1, "progress": False})
    config["grids"]["readings"]["archs"] = ["resnet20"]  # the DAG is the study's; the model is CPU-sized
    path = tmp_path / "readings.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = snakemake("--cores", "2", "--configfile", str(path))
    assert out.returncode == 0, out.stderr[-4000:]
    table = (tmp_path / "tables" / "readings.md").read_text()
    lines = [[c.strip() for c in line.split("|")] for line in table.splitlines() if line.startswith("| ")]
    column = lines[0].index("Method")
    assert [r[column] for r in lines[1:]] == ["LSQ"] + READINGS
    claims = (tmp_path / "tables" / "claims.md").read_text()
    section = claims.split("## Readings of CSD")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.split("|")] for line in section.splitlines() if line.startswith("| ")]
    assert [r[2] for r in rows[1:]] == READINGS
    assert all(r[3].endswith("(n=2)") and r[9] for r in rows[1:])  # seeds 3 and 4 of each, paired, a verdict each
    assert re.search(r"\d+\.\d×", rows[2][8]) and rows[1][8] == "—"  # LSQ+CSD's CSD over CE; LSQ+SFP has no term
    assert "at this schedule (2 QAT epochs)" in section
    assert (tmp_path / "figures" / "loss_composition.png").stat().st_size > 1000
