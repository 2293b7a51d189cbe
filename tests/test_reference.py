"""The reference run's machinery on CPU: reference/run_gpu.sh on a tiny variant of config/reference.yaml
(the mini CIFAR-10) in two calls in a row, as on a GPU machine; each pack regenerates its own tables;
and the committed reference, if any, too."""
import filecmp
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fpq.plan.archive import unpack
from fpq.plan.blocks import read_block, read_blocks
from fpq.plan.index import read_index
from fpq.report.pooling import pool
from fpq.report.tables import build_tables, write_tables

REPO = Path(__file__).resolve().parent.parent
REFERENCE_CSV = REPO / "config" / "reference_tables.csv"


def regenerate_and_compare(root: Path, tmp: Path) -> list[str]:
    """Tables rebuilt from the packed metrics and index (or, for a study made of sittings, from its
    blocks pooled); the names of those that differ."""
    if (root / "blocks").is_dir():
        write_tables(pool(read_blocks(root / "blocks")), tmp / "again", REFERENCE_CSV)
    else:
        build_tables(root / "results", read_index(root / "results" / "index.json"), tmp / "again", REFERENCE_CSV)
    shipped = sorted(p.name for p in (root / "tables").glob("*") if p.suffix in (".md", ".tex", ".html", ".rst"))
    assert shipped, f"no tables in {root}"
    return [name for name in shipped if not filecmp.cmp(root / "tables" / name, tmp / "again" / name, shallow=False)]


def tiny_reference(tmp: Path, mini_npz: Path, qat_epochs: int = 1) -> Path:
    config = yaml.safe_load((REPO / "config" / "reference.yaml").read_text())
    config["grids"]["ablation"]["archs"] = ["resnet20"]  # ResNet-18 on 2 CPU cores is minutes per step
    config.update(seeds=[0, 1], blocks="", results=str(tmp / "results"), tables=str(tmp / "tables"), figures=str(tmp / "figures"),
                  data={"cifar10": {"source": "npz", "path": str(mini_npz), "train_subset": 500, "test_subset": 300}},
                  teacher={"epochs": 1, "batch_size": 128}, qat={"epochs": qat_epochs, "batch_size": 128},
                  runtime={"device": "cpu", "threads": 1},
                  hessian={**config["hessian"], "probes": 2, "batch_size": 32, "final_probes": 2, "final_batches": 1,
                           "eigen_iters": 2},
                  variance={**config["variance"], "images": 64, "samples": 3})
    path = tmp / "reference_tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_script(out: Path, config: Path, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """reference/run_gpu.sh as a device call runs it: OUT empty, the repository root as working directory."""
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "CONFIG": str(config), "JOBS_PER_GPU": "2", "BUDGET_S": "1500",
           "DATA_LABEL": "CIFAR-10 (q90 copy)", **env}
    run = subprocess.run(["bash", "reference/run_gpu.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1800)
    log = (out / "session.log").read_text() if (out / "session.log").exists() else run.stdout + run.stderr
    return run, log


def unpacked(out: Path, into: Path) -> tuple[set[str], dict]:
    files = unpack(out / "reference.tar.gz", into)
    return {str(f.relative_to(into)) for f in files}, json.loads((into / "run.json").read_text())


@pytest.mark.workflow
def test_two_calls_in_a_row_finish_the_reference_dag_and_each_packs_what_exists(tmp_path, mini_npz):
    """The chained device calls on CPU: the first is stopped by its time box once a QAT run has saved
    the checkpoint of its first of two epochs (STOP_WHEN makes that point exact instead of a clock's:
    the stop takes about a second, the second epoch several); the second call continues the same DAG
    without redoing the teacher, resumes the interrupted run from its checkpoint, and completes the
    DAG. Both leave a pack."""
    config = tiny_reference(tmp_path, mini_npz, qat_epochs=2)
    results = tmp_path / "results" / "runs"
    teacher = results / "resnet20_cifar10_fp_s0"

    first, log = run_script(tmp_path / "out1", config, GRACE_S="0",
                            STOP_WHEN=str(results / "*_w2a4_*" / "checkpoint.pt"))
    assert first.returncode == 0 and "stopped by the time box" in log, log + first.stderr[-3000:]
    interrupted = [d for d in results.glob("*_w2a4_*") if (d / "checkpoint.pt").exists()
                   and not (d / "metrics.json").exists()]
    assert interrupted, log  # stopped after an epoch's checkpoint, before the run's end
    names, info = unpacked(tmp_path / "out1", tmp_path / "pack1")
    assert info["call"] == 1 and info["dag_complete"] is False and info["stopped_by_time_box"] is True
    assert info["progress"]["runs"]["missing"] and "resnet20_cifar10_fp_s0" not in info["progress"]["runs"]["missing"]
    assert "results/runs/resnet20_cifar10_fp_s0/metrics.json" in names and "tables/table2_ablation.md" in names
    assert regenerate_and_compare(tmp_path / "pack1", tmp_path / "again1") == []  # partial tables are still true
    teacher_bytes, teacher_mtime = (teacher / "metrics.json").read_bytes(), (teacher / "metrics.json").stat().st_mtime_ns

    second, log = run_script(tmp_path / "out2", config, CONTINUATION="1")
    sm_log = (tmp_path / "out2" / "snakemake.log").read_text()
    assert second.returncode == 0 and "snakemake exit 0" in log, log + sm_log[-3000:]
    assert "call 2 of this DAG" in log and "rule train_teacher" not in sm_log  # the teacher was not run again
    assert (teacher / "metrics.json").read_bytes() == teacher_bytes
    assert (teacher / "metrics.json").stat().st_mtime_ns == teacher_mtime
    assert (teacher / "train.log").read_text().count("== attempt") == 1
    for run in interrupted:  # resumed from the checkpoint of call 1, not trained again from scratch
        assert "resuming after epoch 1" in (run / "train.log").read_text(), run.name
    for out in ("out1", "out2"):
        assert len(list((tmp_path / out).iterdir())) <= 8  # the device tool brings back at most 8 files
    names, info = unpacked(tmp_path / "out2", tmp_path / "reference")
    assert info["call"] == 2 and info["dag_complete"] is True and info["snakemake_exit"] == 0
    assert [c["call"] for c in info["calls"]] == [1, 2] and info["calls"][0]["dag_complete"] is False
    assert all(not p["missing"] and not p["failed"] for p in info["progress"].values()), info["progress"]
    assert info["data"] == "CIFAR-10 (q90 copy)" and info["jobs_per_gpu"] == 2
    assert "results/index.json" in names and "tables/claims.md" in names and "figures/fig5_hessian.png" in names
    assert "results/runs/resnet20_cifar10_w2a4_fpq_p0.1_s1/hessian.json" in names
    assert not [n for n in names if n.endswith((".pt", ".tmp"))]  # no weights, no checkpoints
    index = read_index(tmp_path / "reference" / "results" / "index.json")
    assert [rid for rid in index.runs if index.runs[rid].stage == "teacher"] == ["resnet20_cifar10_fp_s0"]
    assert regenerate_and_compare(tmp_path / "reference", tmp_path) == []


def test_a_continuation_on_a_machine_without_the_first_call_stops_at_once(tmp_path, mini_npz):
    """If the machine went back between the calls, the second call finds nothing to continue: it says
    so and starts no Snakemake (it would spend the rest of the device time on a new, short DAG)."""
    run, log = run_script(tmp_path / "out", tiny_reference(tmp_path, mini_npz), CONTINUATION="1")
    assert run.returncode == 3 and "nothing to continue" in log, log
    assert not (tmp_path / "out" / "snakemake.log").exists() and not (tmp_path / "results" / "runs").exists()


def test_the_committed_reference_tables_are_what_its_metrics_give(tmp_path):
    """reference/ is a study made of sittings: its tables are every block of reference/blocks pooled."""
    root = REPO / "reference"
    assert [b.name for b in read_blocks(root / "blocks")][:1] == ["2026-12-04-h200"]
    assert regenerate_and_compare(root, tmp_path) == []


def test_the_first_block_is_the_2026_12_04_partial_run_with_one_pair(tmp_path):
    """Seed 3 is a whole LSQ/FPQ pair; LSQ seeds 1, 2, 4 and 5 are unpaired; the unfinished FPQ runs
    were dropped, and the next sitting plans the other five seeds with its own teacher."""
    from fpq.plan.blocks import sitting_config
    from fpq.plan.grid import load_workflow_config

    block = read_block(REPO / "reference" / "blocks" / "2026-12-04-h200")
    assert block.info["teacher_top1"] == {"resnet18_cifar10_fp_s0": 87.17} and block.info["gpu"] == "NVIDIA H200"
    assert block.info["wall_s"] == 522 and block.info["torch"] == "2.11.0+cu130" and block.info["code"].startswith("949fafe")
    runs = sorted(p.name for p in (block.results / "runs").iterdir())
    assert runs == ["resnet18_cifar10_fp_s0", "resnet18_cifar10_w2a4_fpq_p0.1_s3"] + [
        f"resnet18_cifar10_w2a4_lsq_s{s}" for s in (1, 2, 3, 4, 5)]
    claims = (REPO / "reference" / "tables" / "claims.md").read_text()
    assert "| 2026-12-04-h200 | 87.17%          | 1               | 4               |" in claims
    config = load_workflow_config(REPO / "config" / "reference.yaml")
    config["blocks"] = str(REPO / config["blocks"])
    assert sitting_config(config)["seeds"] == [0, 1, 2, 4, 5]


def test_a_tampered_pack_is_caught(tmp_path):
    """The comparison above can fail: change one number in a packed metrics.json and it does."""
    from tests.fake_results import workflow_config, write_results

    config = workflow_config(tmp_path / "pack" / "results", {"ablation": {
        "datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["lsq", "fpq"]}})
    index = write_results(config, lambda c: 90.0 + c.seed)
    (tmp_path / "pack" / "results" / "index.json").write_text(index.to_json())
    build_tables(tmp_path / "pack" / "results", index, tmp_path / "pack" / "tables", REFERENCE_CSV)
    assert regenerate_and_compare(tmp_path / "pack", tmp_path / "a") == []
    metrics = tmp_path / "pack" / "results" / "runs" / "resnet18_cifar10_w2a4_lsq_s0" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"top1": 90.0', '"top1": 91.0'))
    assert "table2_ablation.md" in regenerate_and_compare(tmp_path / "pack", tmp_path / "b")


@pytest.mark.slow
def test_the_campaign_script_runs_the_harness_then_the_reference_dag(tmp_path, mini_npz):
    """bench/gpu_campaign.sh as the device call runs it, on the CPU: the harness (SMOKE) packed as
    bench.tar.gz with its summary, the choice it made (no captured graph on a CPU: eager steps and
    the torch path, the same run identities), then the tiny reference DAG to its pack; at most 8 files come back."""
    import tarfile

    config = tiny_reference(tmp_path, mini_npz)
    data = yaml.safe_load(config.read_text())
    data["runtime"]["cuda"] = {"cuda_graph": True}  # as config/reference.yaml asks: the choice turns it off
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "REFERENCE_CONFIG": str(config), "SMOKE": "1", "HARNESS_S": "20",
           "CORE_ARCH": "resnet20", "CAMPAIGN_STATE": str(tmp_path / "state" / "campaign.env"), "BUDGET_S": "1500",
           "DATA_LABEL": "CIFAR-10 (q90 copy)"}
    run = subprocess.run(["bash", "bench/gpu_campaign.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"bench.tar.gz", "reference.tar.gz", "run.json"} <= set(files), files
    with tarfile.open(out / "bench.tar.gz") as tar:
        names = tar.getnames()
    assert "bench/session.json" in names and "bench/summary.json" in names
    state = (tmp_path / "state" / "campaign.env").read_text()
    assert "CUDA_GRAPH=false" in state and "KERNELS=torch" in state and "JOBS_PER_GPU=3" in state
    ran = yaml.safe_load((tmp_path / "state" / "reference-path.yaml").read_text())
    assert ran["runtime"]["cuda"] == {"cuda_graph": False, "kernels": "torch"} and ran["name"] == data["name"]
    assert json.loads((out / "run.json").read_text())["dag_complete"] is True
