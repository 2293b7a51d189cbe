"""Blocks (fpq.plan.blocks): made from a pack with only the finished runs, named <date>-<gpu>, and
the seeds they finished taken out of the next sitting's plan."""
import json
import re
from pathlib import Path

import pytest
import yaml

from fpq.cli import main
from fpq.errors import DataError
from fpq.plan.archive import pack
from fpq.plan.blocks import finished_seeds, make_block, read_block, read_blocks, sitting_config
from fpq.plan.grid import expand
from fpq.plan.index import read_index
from tests.fake_results import workflow_config, write_results

GRID = {"ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["lsq", "fpq"]}}


def sitting(root: Path, unfinished: tuple[str, ...] = (), seeds=(0, 1, 2), top1=None, gpu="NVIDIA H200",
            **extra) -> dict:
    """A sitting's results folder as a time box leaves it: every run finished but `unfinished`,
    which keep their train.log, config.json and checkpoint but have no metrics.json."""
    config = workflow_config(root / "results", GRID, seeds=list(seeds), teacher_seed=0, **extra)
    index = write_results(config, top1 or (lambda c: 80.0 + c.seed + (1.0 if c.method == "fpq" else 0.0)))
    (root / "results" / "index.json").write_text(index.to_json())
    for rid in index.runs:
        folder = root / "results" / "runs" / rid
        (folder / "train.log").write_text("== attempt 1\n")
        (folder / "checkpoint.pt").write_bytes(b"weights")
        if rid in unfinished:
            (folder / "metrics.json").unlink()
    (root / "run.json").write_text(json.dumps({"gpu": gpu, "date": "2026-12-04T17:23:28Z"}))
    return config


def test_a_block_keeps_the_finished_runs_files_only_and_records_its_teacher(tmp_path):
    sitting(tmp_path / "pack", unfinished=("resnet18_cifar10_w2a4_lsq_s1",))
    block = make_block(tmp_path / "pack", tmp_path / "blocks")
    assert block.name == "2026-12-04-h200" and block.path == tmp_path / "blocks" / "2026-12-04-h200"
    runs = sorted(p.name for p in (block.results / "runs").iterdir())
    assert "resnet18_cifar10_w2a4_lsq_s1" not in runs and "resnet18_cifar10_w2a4_fpq_p0.1_s1" in runs
    assert len(runs) == 6  # teacher + 6 students - the unfinished one
    files = {p.name for p in block.path.rglob("*") if p.is_file()}
    assert "checkpoint.pt" not in files and {"metrics.json", "train.log", "run.json", "index.json"} <= files
    assert block.info["teacher_top1"] == {"resnet18_cifar10_fp_s0": 80.0} and block.info["gpu"] == "NVIDIA H200"
    assert block.info["wall_s"] is None and block.info["runs_wall_s"] == 0.0  # no time recorded by this fake
    assert read_block(block.path).info == block.info
    again = make_block(tmp_path / "pack", tmp_path / "blocks")  # a second sitting on the same day and GPU
    assert again.name == "2026-12-04-h200-2"
    assert [b.name for b in read_blocks(tmp_path / "blocks")] == ["2026-12-04-h200", "2026-12-04-h200-2"]


def test_the_next_sitting_plans_the_seeds_no_block_finished_whole(tmp_path):
    config = sitting(tmp_path / "pack", unfinished=("resnet18_cifar10_w2a4_lsq_s1", "resnet18_cifar10_w2a4_lsq_s2",
                                                     "resnet18_cifar10_w2a4_fpq_p0.1_s2"))
    make_block(tmp_path / "pack", tmp_path / "blocks")
    config["blocks"] = str(tmp_path / "blocks")
    assert finished_seeds(config, read_blocks(config["blocks"])) == {0: ["2026-12-04-h200"]}
    nxt = sitting_config(config)
    assert nxt["seeds"] == [1, 2] and config["seeds"] == [0, 1, 2]  # the study's config is left alone
    plan = expand(nxt)
    assert plan.ids("teacher") == ["resnet18_cifar10_fp_s0"]  # the new block trains its own teacher
    assert sorted(plan.runs[r].cell.seed for r in plan.ids("qat")) == [1, 1, 2, 2]  # the half seed, whole
    config["blocks"] = ""
    assert sitting_config(config)["seeds"] == [0, 1, 2]


def test_a_block_of_another_recipe_is_refused_naming_the_key(tmp_path):
    """A block made with 5 QAT epochs in a 10-epoch study's blocks would pass for its seeds: refused."""
    sitting(tmp_path / "pack", qat={"epochs": 5})
    make_block(tmp_path / "pack", tmp_path / "blocks")
    config = workflow_config(tmp_path / "results", GRID, seeds=[0, 1, 2], teacher_seed=0, qat={"epochs": 10},
                             blocks=str(tmp_path / "blocks"))
    with pytest.raises(DataError, match=r"lsq_s0 was made by another recipe than this config's \(optim.epochs: "
                                        r"5 -> 10\): it belongs to another study"):
        sitting_config(config)
    config["qat"]["epochs"] = 5
    assert sitting_config(config)["seeds"] == []


def test_fpq_unpack_block_from_a_pack_and_the_errors(tmp_path, capsys):
    sitting(tmp_path / "s", unfinished=("resnet18_cifar10_w2a4_fpq_p0.1_s2",))
    (tmp_path / "t").mkdir()
    (tmp_path / "f").mkdir()
    info = json.loads((tmp_path / "s" / "run.json").read_text())
    pack(tmp_path / "s" / "results", tmp_path / "t", tmp_path / "f", tmp_path / "p.tar.gz", info)
    assert main(["unpack", str(tmp_path / "p.tar.gz"), "--into", str(tmp_path / "blocks"), "--block"]) == 0
    assert "block 2026-12-04-h200, 6 finished runs (teacher top-1 80.00%)" in capsys.readouterr().out
    (tmp_path / "blocks" / "stray").mkdir()
    with pytest.raises(DataError, match="stray is not a block: it has no run.json"):
        read_blocks(tmp_path / "blocks")
    for rid in json.loads((tmp_path / "s" / "results" / "index.json").read_text())["runs"]:
        (tmp_path / "s" / "results" / "runs" / rid / "metrics.json").unlink(missing_ok=True)
    with pytest.raises(DataError, match="no run of the pack finished"):
        make_block(tmp_path / "s", tmp_path / "other")
    assert not (tmp_path / "other").exists() or not list((tmp_path / "other").iterdir())
    assert main(["tables", "--blocks", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "--blocks " in capsys.readouterr().err


def test_the_budget_prices_the_seeds_left_block_by_block(tmp_path, capsys):
    """Teacher first, then whole seeds: a longer sitting fits more seeds; too short a one fits none."""
    from fpq.plan.sittings import sittings_report

    config = sitting(tmp_path / "pack", unfinished=("resnet18_cifar10_w2a4_lsq_s1", "resnet18_cifar10_w2a4_lsq_s2"))
    make_block(tmp_path / "pack", tmp_path / "blocks")
    config["blocks"] = str(tmp_path / "blocks")
    timings = Path(__file__).resolve().parents[2] / "config" / "epoch_seconds.yaml"
    report = sittings_report(config, timings, 10_000)
    assert "1 block committed, seed 0 finished" in report and "need 1 sitting" in report
    seed = float(re.search(r"whole seeds of (\d+) s", report)[1])
    teacher = float(re.search(r"its teacher (\d+) s", report)[1])
    assert "1 seed a sitting" in sittings_report(config, timings, teacher + seed * 1.5)
    assert "need 2 sittings" in sittings_report(config, timings, teacher + seed * 1.5)
    assert "no whole seed fits" in sittings_report(config, timings, teacher + seed * 0.5)
    config["seeds"] = [0]
    assert "no sitting left" in sittings_report(config, timings)


def test_the_cli_plans_the_sitting_from_a_config_file_and_from_the_workflows_json(tmp_path, capsys):
    """`fpq runs --configfile` and `fpq index --config-json` (how the workflow's index_runs reads its
    config) both plan the sitting only: the seeds no block finished, and the sitting's own teacher."""
    config = sitting(tmp_path / "pack", unfinished=("resnet18_cifar10_w2a4_lsq_s1",))
    make_block(tmp_path / "pack", tmp_path / "blocks")
    config["blocks"] = str(tmp_path / "blocks")
    want = sorted(expand(sitting_config(config)).runs)
    assert want == ["resnet18_cifar10_fp_s0", "resnet18_cifar10_w2a4_fpq_p0.1_s1", "resnet18_cifar10_w2a4_lsq_s1"]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["runs", "--configfile", str(path)]) == 0
    assert sorted(capsys.readouterr().out.split()) == want
    assert main(["index", "--config-json", json.dumps(config), "--out", str(tmp_path / "index.json")]) == 0
    assert sorted(read_index(tmp_path / "index.json").runs) == want
