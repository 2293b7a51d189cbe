"""The reference run's machinery on CPU: reference/run_gpu.sh on a tiny variant of config/reference.yaml
(the mini CIFAR-10), its pack regenerates its own tables; and the committed reference, if any, too."""
import filecmp
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fpq.plan.archive import unpack
from fpq.plan.index import read_index
from fpq.report.tables import build_tables

REPO = Path(__file__).resolve().parent.parent
REFERENCE_CSV = REPO / "config" / "reference_tables.csv"


def regenerate_and_compare(root: Path, tmp: Path) -> list[str]:
    """Tables rebuilt from the packed metrics and index; the names of those that differ."""
    index = read_index(root / "results" / "index.json")
    build_tables(root / "results", index, tmp / "again", REFERENCE_CSV)
    shipped = sorted(p.name for p in (root / "tables").glob("*") if p.suffix in (".md", ".tex"))
    assert shipped, f"no tables in {root}"
    return [name for name in shipped if not filecmp.cmp(root / "tables" / name, tmp / "again" / name, shallow=False)]


def tiny_reference(tmp: Path, mini_npz: Path) -> Path:
    config = yaml.safe_load((REPO / "config" / "reference.yaml").read_text())
    config["grids"]["ablation"]["archs"] = ["resnet20"]  # ResNet-18 on 2 CPU cores is minutes per step
    config.update(seeds=[0, 1], results=str(tmp / "results"), tables=str(tmp / "tables"), figures=str(tmp / "figures"),
                  data={"cifar10": {"source": "npz", "path": str(mini_npz), "train_subset": 500, "test_subset": 300}},
                  teacher={"epochs": 1, "batch_size": 128}, qat={"epochs": 1, "batch_size": 128},
                  runtime={"device": "cpu", "threads": 1},
                  hessian={**config["hessian"], "probes": 2, "batch_size": 32, "final_probes": 2, "final_batches": 1,
                           "eigen_iters": 2},
                  variance={**config["variance"], "images": 64, "samples": 3})
    path = tmp / "reference_tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.workflow
def test_the_gpu_script_runs_the_reference_dag_and_its_pack_regenerates_its_tables(tmp_path, mini_npz):
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "CONFIG": str(tiny_reference(tmp_path, mini_npz)), "JOBS_PER_GPU": "2",
           "BUDGET_S": "1500"}
    run = subprocess.run(["bash", "reference/run_gpu.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1800)
    log = (out / "session.log").read_text()
    assert run.returncode == 0 and "snakemake exit 0" in log, log + (out / "snakemake.log").read_text()[-3000:]
    assert len(list(out.iterdir())) <= 8  # the device tool brings back at most 8 files
    files = unpack(out / "reference.tar.gz", tmp_path / "reference")
    names = {str(f.relative_to(tmp_path / "reference")) for f in files}
    assert "results/index.json" in names and "tables/claims.md" in names and "figures/fig5_hessian.png" in names
    assert "results/runs/resnet20_cifar10_w2a4_fpq_p0.1_s1/hessian.json" in names
    assert not [n for n in names if n.endswith((".pt", ".tmp"))]  # no weights, no checkpoints
    index = read_index(tmp_path / "reference" / "results" / "index.json")
    assert [rid for rid in index.runs if index.runs[rid].stage == "teacher"] == ["resnet20_cifar10_fp_s0"]
    assert regenerate_and_compare(tmp_path / "reference", tmp_path) == []
    info = yaml.safe_load((tmp_path / "reference" / "run.json").read_text())
    assert info["data"] == "CIFAR-10 (q90 copy)" and info["snakemake_exit"] == 0 and info["jobs_per_gpu"] == 2


def test_the_committed_reference_tables_are_what_its_metrics_give(tmp_path):
    root = REPO / "reference"
    if not (root / "results" / "index.json").exists():
        pytest.skip("no reference run committed yet (reference/README.md: it needs a GPU session)")
    assert regenerate_and_compare(root, tmp_path) == []


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
