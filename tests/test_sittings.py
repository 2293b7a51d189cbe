"""Two sittings on the fixture make one study (fpq.plan.blocks, fpq.report.pooling).

The first sitting (reference/run_gpu.sh, as a device call runs it) is cut off by its time box after
one whole seed and half of the next; its pack becomes a block, committed into a temporary blocks/.
The second sitting runs from a fresh clone of that state, trains its own teacher and the rest, and
becomes the second block. The study's tables, claims and figures pool both blocks."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as sp

from fpq.cli import main
from fpq.plan.blocks import read_blocks
from tests.test_reference import run_script, tiny_reference

REPO = Path(__file__).resolve().parent.parent
FPQ, LSQ = "resnet20_cifar10_w2a4_fpq_p0.1_s{}", "resnet20_cifar10_w2a4_lsq_s{}"


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def clone(state: Path, to: Path, mini_npz: Path) -> Path:
    """A fresh clone of the study's state and the sitting's config: its results in the clone, the
    clone's blocks/ as the study's blocks."""
    git("clone", "-q", str(state), str(to), cwd=state.parent)
    config = yaml.safe_load(tiny_reference(to, mini_npz).read_text())
    config.update(blocks=str(to / "blocks"))
    (to / "sitting.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return to / "sitting.yaml"


def commit_block(out: Path, state: Path) -> str:
    """`fpq unpack PACK --block` into the state's blocks/, committed; the new block's name."""
    before = {b.name for b in read_blocks(state / "blocks")}
    assert main(["unpack", str(out / "reference.tar.gz"), "--block", "--into", str(state / "blocks")]) == 0
    git("add", "-A", cwd=state)
    git("commit", "-qm", "a block", cwd=state)
    (name,) = {b.name for b in read_blocks(state / "blocks")} - before
    return name


def top1(block: Path, rid: str) -> float:
    return json.loads((block / "results" / "runs" / rid / "metrics.json").read_text())["final"]["top1"]


@pytest.mark.workflow
def test_two_sittings_on_the_fixture_make_one_study(tmp_path, mini_npz):
    state = tmp_path / "state"
    (state / "blocks").mkdir(parents=True)
    (state / "blocks" / ".keep").write_text("")
    git("init", "-q", cwd=state)
    git("add", "-A", cwd=state)
    git("commit", "-qm", "a study, no block yet", cwd=state)

    # Sitting 1: one job at a time, the time box closes once FPQ of seed 1 has finished (seed 0 whole).
    one = tmp_path / "one"
    config = clone(state, one, mini_npz)
    run, log = run_script(tmp_path / "out1", config, JOBS_PER_GPU="1", GRACE_S="0",
                          STOP_WHEN=str(one / "results" / "runs" / FPQ.format(1) / "metrics.json"))
    assert run.returncode == 0 and "stopped by the time box" in log, log
    first = state / "blocks" / commit_block(tmp_path / "out1", state)
    kept = sorted(p.name for p in (first / "results" / "runs").iterdir())
    assert kept == sorted(["resnet20_cifar10_fp_s0", FPQ.format(0), LSQ.format(0), FPQ.format(1)]), kept
    for rid in (FPQ.format(0), LSQ.format(0)):  # a finished seed is complete: measured before the next seed
        assert {"hessian.json", "variance.json"} <= {p.name for p in (first / "results" / "runs" / rid).iterdir()}
    first_files = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}

    # Sitting 2, from a fresh clone: its own teacher, seed 1 whole again, seed 0 not at all.
    two = tmp_path / "two"
    config = clone(state, two, mini_npz)
    run, log = run_script(tmp_path / "out2", config, JOBS_PER_GPU="2")
    sm_log = (tmp_path / "out2" / "snakemake.log").read_text()
    assert run.returncode == 0 and "snakemake exit 0" in log, log + sm_log[-3000:]
    assert "rule train_teacher" in sm_log and "_s0\n" not in sm_log.replace("fp_s0\n", "")
    second = state / "blocks" / commit_block(tmp_path / "out2", state)
    assert sorted(p.name for p in (second / "results" / "runs").iterdir()) == sorted(
        ["resnet20_cifar10_fp_s0", FPQ.format(1), LSQ.format(1)])
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == first_files  # nothing of it redone

    # The study: both blocks pooled.
    final = tmp_path / "final"
    assert main(["tables", "--blocks", str(state / "blocks"), "--out", str(final / "tables")]) == 0
    assert main(["figures", "--blocks", str(state / "blocks"), "--out", str(final / "figures")]) == 0
    units = [(first, 0), (second, 1)]  # the whole pairs: (block, seed) with both methods in that block
    fpq, lsq = (np.array([top1(b, m.format(s)) for b, s in units]) for m in (FPQ, LSQ))
    test = sp.ttest_rel(fpq, lsq)
    low, high = test.confidence_interval(0.95)
    claims = (final / "tables" / "claims.md").read_text()
    row = next(line for line in claims.split("## 1. FPQ beats LSQ")[1].splitlines() if line.startswith("| CIFAR-10"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{np.mean(fpq - lsq):+.2f}" or cells[3] == f"{np.mean(fpq) - np.mean(lsq):+.2f}"
    assert cells[4] == f"[{low:+.2f}, {high:+.2f}]" and cells[5] == f"{test.pvalue:#.2g}", cells
    assert cells[6] == "paired, n=2 (1 seed of one side left out)"  # block 1's FPQ s1: unpaired, in the mean only
    assert cells[1] == f"{np.mean(fpq.tolist() + [top1(first, FPQ.format(1))]):.2f} ± " + cells[1].split("± ")[1]
    teachers = [f"{b.name} (teacher {top1(b, 'resnet20_cifar10_fp_s0'):.2f}%)" for b in (first, second)]
    pages = [final / "tables" / f"{name}.{ext}" for name in ("table2_ablation", "claims") for ext in ("md", "caption.rst")]
    for page in pages + [*(final / "figures").glob("*.caption.rst"), final / "tables" / "table2_ablation.tex"]:
        assert all(t in page.read_text() for t in teachers), page.name
    assert f"| {first.name} " in claims and f"| {second.name} " in claims and "2 sittings, 2 teachers" in claims


def test_the_schedule_study_dry_runs_each_point_and_the_budget_prices_every_point(tmp_path):
    """config/schedule.yaml: the 10-epoch point as it stands, the 20-epoch one through a second
    --configfile; each point is its own study (results/schedule-q20); a point not in the schedule is
    refused; fpq budget prices all four in sittings."""
    from tests.test_workflow import snakemake

    config = yaml.safe_load((REPO / "config" / "schedule.yaml").read_text())
    config["data"]["cifar10"]["path"] = str(REPO / "tests" / "data" / "cifar10-fixture.npz")  # no .devdata here
    config.update(results=str(tmp_path / "results" / "{name}"), blocks=str(tmp_path / "blocks"))
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(config))
    for epochs, extra in ((10, []), (20, [tmp_path / "q20.yaml"]), (7, [tmp_path / "q7.yaml"])):
        for path in extra:  # a point: a second --configfile, deep-merged into the first
            path.write_text(f"qat: {{epochs: {epochs}}}\n")
        out = snakemake("-n", "--configfile", str(tmp_path / "schedule.yaml"), *map(str, extra))
        if epochs == 7:
            assert out.returncode != 0 and "qat.epochs: 7 is not a point of qat_schedule [5, 10, 20, 40]" in (
                out.stdout + out.stderr)
            continue
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.count("rule train_qat:") == 12 and f"results/schedule-q{epochs}/runs/" in out.stdout
    budget = subprocess.run([sys.executable, "-m", "fpq.cli", "budget", "--configfile", str(REPO / "config" / "schedule.yaml")],
                            capture_output=True, text=True, cwd=REPO)
    assert budget.returncode == 0, budget.stderr
    assert [f"schedule-q{e} ({e} QAT epochs) in sittings of 660 s" in budget.stdout for e in (5, 10, 20, 40)] == [True] * 4
    assert re.search(r"the schedule study \(4 points\): \d+ sittings", budget.stdout)
