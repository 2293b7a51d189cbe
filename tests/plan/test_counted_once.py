"""Nothing counted twice, nothing half-made: a sitting over a results folder that still holds a
block's runs, a truncated or tampered pack, and a block whose run.json disagrees with its results
are each refused with one line, and leave nothing behind."""
import gzip
import io
import json
import shutil
import tarfile

import pytest
import yaml

from fpq.cli import main
from fpq.errors import ConfigError, DataError
from fpq.plan.archive import pack, unpack
from fpq.plan.blocks import check_counted_once, make_block, read_block, read_blocks
from tests.plan.test_blocks import sitting
from tests.test_workflow import error_lines, snakemake

TEACHER = "resnet18_cifar10_fp_s0"


def a_pack(tmp_path):
    sitting(tmp_path / "s")
    for folder in ("t", "f"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "page.md").write_text("a table\n")
    info = json.loads((tmp_path / "s" / "run.json").read_text())
    return pack(tmp_path / "s" / "results", tmp_path / "t", tmp_path / "f", tmp_path / "p.tar.gz", info)


def test_a_sitting_over_a_results_folder_holding_a_blocks_runs_is_refused(tmp_path):
    config = sitting(tmp_path / "one")  # sitting 1, whole; its results folder is where sitting 2 would write
    make_block(tmp_path / "one", tmp_path / "blocks")
    config["blocks"] = str(tmp_path / "blocks")
    with pytest.raises(ConfigError, match=r"holds 7 runs that block 2026-12-04-h200 already counts .*twice; move "
                                          r"that folder aside"):
        check_counted_once(config)
    shutil.move(config["results"], tmp_path / "aside")
    check_counted_once(config)  # a fresh folder: the next sitting may start
    (tmp_path / "one" / "results" / "runs" / TEACHER).mkdir(parents=True)
    (tmp_path / "one" / "results" / "runs" / TEACHER / "metrics.json").write_text('{"its": "own teacher"}\n')
    check_counted_once(config)  # a run of this sitting (another metrics.json) is its own, not the block's


@pytest.mark.workflow
def test_the_workflow_refuses_that_sitting_with_one_line(tmp_path):
    config = sitting(tmp_path / "one")
    make_block(tmp_path / "one", tmp_path / "blocks")
    config["blocks"] = str(tmp_path / "blocks")
    path = tmp_path / "sitting.yaml"
    path.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "--configfile", str(path))
    assert out.returncode == 2, out.stderr[-2000:]
    (line,) = error_lines(out)
    assert line.startswith(f"fpq: error: results folder {config['results']} holds 7 runs that block")


def test_unpack_checks_the_manifest_and_places_every_file(tmp_path):
    placed = unpack(a_pack(tmp_path), tmp_path / "into")
    names = sorted(str(p.relative_to(tmp_path / "into")) for p in placed)
    assert "run.json" in names and "tables/page.md" in names and "manifest.json" not in names
    assert sorted(str(p.relative_to(tmp_path / "into")) for p in (tmp_path / "into").rglob("*") if p.is_file()) == names
    ours = tmp_path / "s" / "results" / "runs" / TEACHER / "metrics.json"
    assert (tmp_path / "into" / "results" / "runs" / TEACHER / "metrics.json").read_bytes() == ours.read_bytes()


def test_a_truncated_pack_is_refused_and_leaves_nothing(tmp_path):
    archive = a_pack(tmp_path)
    blob = archive.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 4):  # half a pack; the gzip trailer's length gone
        archive.write_bytes(blob[:cut])
        into = tmp_path / f"into{cut}"
        with pytest.raises(DataError, match=r"is not a readable results pack .*nothing unpacked"):
            unpack(archive, into)
        assert list(into.iterdir()) == []


def repacked(archive, change):
    """The pack with its members rewritten by `change(name, blob) -> blob | None` (None drops it)
    and gzipped again: a valid gzip whose content is not what fpq packed."""
    out = io.BytesIO()
    with tarfile.open(archive, "r:gz") as tar, tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in tar.getmembers():
            blob = change(member.name, tar.extractfile(member).read())
            if blob is not None:
                member.size = len(blob)
                new.addfile(member, io.BytesIO(blob))
    archive.write_bytes(out.getvalue())
    return archive


@pytest.mark.parametrize("change, said", [
    (lambda n, b: b.replace(b'"top1": 80.0', b'"top1": 99.0') if n.endswith(f"{TEACHER}/metrics.json") else b,
     f"results/runs/{TEACHER}/metrics.json differs from the digest its manifest gives"),
    (lambda n, b: None if n.endswith(f"{TEACHER}/metrics.json") else b,
     f"results/runs/{TEACHER}/metrics.json is missing from the pack"),
])
def test_a_tampered_pack_is_refused_and_leaves_nothing(tmp_path, capsys, change, said):
    archive = repacked(a_pack(tmp_path), change)
    with pytest.raises(DataError, match=said):
        unpack(archive, tmp_path / "into")
    assert list((tmp_path / "into").iterdir()) == []
    assert main(["unpack", str(archive), "--block", "--into", str(tmp_path / "blocks")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and read_blocks(tmp_path / "blocks") == []


def test_a_pack_made_before_manifests_still_unpacks(tmp_path):
    archive = repacked(a_pack(tmp_path), lambda n, b: None if n == "manifest.json" else b)
    assert (tmp_path / "into" / "run.json") in unpack(archive, tmp_path / "into")
    with gzip.open(archive) as raw:
        assert b"manifest.json" not in raw.read()


@pytest.mark.parametrize("damage, said", [
    (lambda b: (b / "run.json").unlink(), "is not a block: it has no run.json"),
    (lambda b: shutil.rmtree(b / "results" / "runs" / TEACHER), "run.json says 7 finished runs, results/runs holds 6"),
    (lambda b: shutil.copytree(b / "results" / "runs" / TEACHER, b / "results" / "runs" / "resnet18_extra_s9"),
     "run.json says 7 finished runs, results/runs holds 8"),
    (lambda b: (b / "results" / "runs" / TEACHER / "metrics.json").write_text(
        (b / "results" / "runs" / TEACHER / "metrics.json").read_text().replace('"top1": 80.0', '"top1": 81.0')),
     f"run.json gives teacher {TEACHER} top-1 80.0, its metrics.json 81.0"),
])
def test_a_block_that_disagrees_with_its_results_is_refused_with_one_line(tmp_path, capsys, damage, said):
    sitting(tmp_path / "pack")
    block = make_block(tmp_path / "pack", tmp_path / "blocks")
    read_block(block.path)
    damage(block.path)
    with pytest.raises(DataError, match=said):
        read_blocks(tmp_path / "blocks")
    assert main(["tables", "--blocks", str(tmp_path / "blocks"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and not (tmp_path / "o").exists()


def test_a_stray_run_in_a_blocks_results_is_named(tmp_path):
    sitting(tmp_path / "pack")
    block = make_block(tmp_path / "pack", tmp_path / "blocks")
    info = json.loads((block.path / "run.json").read_text())
    shutil.copytree(block.results / "runs" / TEACHER, block.results / "runs" / "resnet18_extra_s9")
    (block.path / "run.json").write_text(json.dumps({**info, "finished_runs": 8}))
    with pytest.raises(DataError, match="results/runs/resnet18_extra_s9 is not in the block's index.json"):
        read_block(block.path)
