"""`fpq status` on a fixture with a run in every state: done, running (here and on another host),
stopped (a process really killed mid-epoch), failed (as a result, and crashed), missing."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fpq.config import effective_json
from fpq.io import write_json
from fpq.plan.grid import expand
from fpq.plan.progress import DONE, FAILED, MISSING, RUNNING, STOPPED, read_progress
from fpq.plan.status import format_status, read_status
from tests.bench_scripts import load_bench
from tests.fake_results import workflow_config

REPO = Path(__file__).resolve().parents[2]
TIMINGS = REPO / "config" / "epoch_seconds.yaml"
GRIDS = {"ablation": {"datasets": ["cifar10"], "archs": ["resnet20"], "bits": ["w2a4"], "methods": ["lsq", "fpq"]}}
# A stand-in for `fpq qat`: the real progress writer (RunLog, progress_line) logs epoch 1 and saves a
# checkpoint, then sits in epoch 2 until killed. "fpq" in its argv, as in a real run's.
WRITER = """
import json, sys, time
from pathlib import Path
from fpq.config import load_config
from fpq.run.train import RunLog, progress_line
cfg, out = load_config(json.loads(sys.argv[1])), Path(sys.argv[2])
log = RunLog(cfg, out)
row = {"epoch": 1, "train_loss": 1.5, "train_acc": 40.0, "test_acc": 38.0, "epoch_time": 12.5}
log.write(progress_line(cfg, row, 500, cfg.optim.epochs - 1))
(out / "checkpoint.pt").write_bytes(b"state after epoch 1")
(out / "epoch1").touch()
time.sleep(300)
"""


def start_writer(plan, rid: str, folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(effective_json(plan.runs[rid].config))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(cfg), str(folder), "fpq"],
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not (folder / "epoch1").exists():
        assert proc.poll() is None and time.time() < deadline, "the writer did not reach epoch 1"
        time.sleep(0.2)
    return proc


def other_host_log(folder: Path, rid: str, age_s: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "train.log"
    log.write_text(f"== attempt 1: 2026-12-01 10:00:00 on gpu-node-7, pid 4242\n"
                   f"[{rid}] epoch 3/5 loss 1.0 train 50.00% test 48.00% | 2,000 img/s | 20.0s/epoch | ETA 0.7 min\n")
    stamp = time.time() - age_s
    os.utime(log, (stamp, stamp))


@pytest.fixture
def campaign(tmp_path):
    """Teachers s0-s2 done; LSQ s0 running here, s1 killed mid-epoch, s2 failed (diverged: a result);
    FPQ s0 crashed (failed.json), s1 running on a cluster node, s2 missing. Yields the config."""
    config = workflow_config(tmp_path / "results", GRIDS, qat={"epochs": 3})
    plan = expand(config)
    runs = tmp_path / "results" / "runs"
    for seed in range(3):
        rid = f"resnet20_cifar10_fp_s{seed}"
        write_json(runs / rid / "metrics.json", {"run_id": rid, "status": "ok", "epochs": 200, "wall_time_s": 1800.0})
    running = start_writer(plan, "resnet20_cifar10_w2a4_lsq_s0", runs / "resnet20_cifar10_w2a4_lsq_s0")
    killed = start_writer(plan, "resnet20_cifar10_w2a4_lsq_s1", runs / "resnet20_cifar10_w2a4_lsq_s1")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    write_json(runs / "resnet20_cifar10_w2a4_lsq_s2" / "metrics.json",
               {"status": "failed", "error": "DivergenceError: run diverged at epoch 2: {'train_loss': nan}\nmore"})
    crashed = runs / "resnet20_cifar10_w2a4_fpq_p0.1_s0"
    other_host_log(crashed, crashed.name, age_s=5000)
    write_json(crashed / "failed.json", {"status": "failed", "error": "RuntimeError: CUDA out of memory."})
    other_host_log(runs / "resnet20_cifar10_w2a4_fpq_p0.1_s1", "resnet20_cifar10_w2a4_fpq_p0.1_s1", age_s=30)
    yield config
    running.kill()
    running.wait()


def test_every_state_is_read_from_the_run_folders(campaign):
    status = read_status(campaign, TIMINGS)
    states = {rid: p.state for rid, p in status.runs.items()}
    assert states == {
        "resnet20_cifar10_fp_s0": DONE, "resnet20_cifar10_fp_s1": DONE, "resnet20_cifar10_fp_s2": DONE,
        "resnet20_cifar10_w2a4_lsq_s0": RUNNING, "resnet20_cifar10_w2a4_lsq_s1": STOPPED,
        "resnet20_cifar10_w2a4_lsq_s2": FAILED, "resnet20_cifar10_w2a4_fpq_p0.1_s0": FAILED,
        "resnet20_cifar10_w2a4_fpq_p0.1_s1": RUNNING, "resnet20_cifar10_w2a4_fpq_p0.1_s2": MISSING}
    here, killed = status.runs["resnet20_cifar10_w2a4_lsq_s0"], status.runs["resnet20_cifar10_w2a4_lsq_s1"]
    assert (here.epoch, here.epochs, here.epoch_seconds) == (1, 3, 12.5)
    assert 12.5 <= here.eta_seconds <= 25.0  # 2 epochs left at 12.5 s, less the time since the last line
    assert killed.describe().startswith("stopped after epoch 1/3, 12.5 s/epoch")
    assert "resumes from its last checkpoint" in killed.describe()
    assert status.runs["resnet20_cifar10_w2a4_lsq_s2"].describe() == (
        "DivergenceError: run diverged at epoch 2: {'train_loss': nan}")  # the error's first line
    assert status.runs["resnet20_cifar10_w2a4_fpq_p0.1_s0"].describe() == "RuntimeError: CUDA out of memory."
    node = status.runs["resnet20_cifar10_w2a4_fpq_p0.1_s1"]
    assert node.where == "gpu-node-7, pid 4242" and node.eta_seconds == pytest.approx(2 * 20.0 - 20.0, abs=2)


def test_the_report_counts_each_cell_and_prices_the_time_spent(campaign):
    text = format_status(read_status(campaign, TIMINGS))
    assert text.splitlines()[0].endswith("9 runs in " + campaign["results"] + "/runs — 3 done, 2 running, "
                                         "1 stopped, 2 failed, 1 missing")
    counts = lambda label: [int(x) for x in re.search(rf"^  {re.escape(label)} +([\d ]+)$", text, re.M)  # noqa: E731
                            .group(1).split()]
    assert counts("CIFAR-10 ResNet-20 W2A4 LSQ") == [0, 1, 1, 1, 0]
    assert counts("CIFAR-10 ResNet-20 W2A4 FPQ p=0.1") == [0, 1, 0, 1, 1]
    assert counts("CIFAR-10 ResNet-20 FP") == [3, 0, 0, 0, 0]
    assert re.search(r"^  resnet20_cifar10_w2a4_lsq_s0: epoch 1/3 done, 12\.5 s/epoch, ETA \d+ s \(", text, re.M)
    assert "resnet20_cifar10_w2a4_lsq_s2: DivergenceError" in text
    assert "measurements: hessian 0/6, variance 0/9" in text
    # the three teachers' 1800 s and the logged epochs of the others (12.5 + 12.5 + 20.0 + 20.0 s)
    assert re.search(r"GPU-hours of training: 1\.52 spent — the 3 done runs 1\.50 \(budgeted [\d.]+\), the "
                     r"others 0\.02 so far", text)


def test_a_cpu_campaign_is_counted_in_device_hours_without_zero_parts(tmp_path):
    """Every run done on a CPU in a minute (as config/ci.yaml): device-hours, and no "0.00" budget parts."""
    config = workflow_config(tmp_path / "results", GRIDS, qat={"epochs": 1}, teacher={"epochs": 1})
    for rid in expand(config).runs:
        write_json(tmp_path / "results" / "runs" / rid / "metrics.json",
                   {"run_id": rid, "status": "ok", "epochs": 1, "wall_time_s": 60.0, "device": {"type": "cpu"}})
    line = format_status(read_status(config, TIMINGS)).splitlines()[-1]
    assert line.startswith("device-hours (done runs on cpu) of training: 0.15 spent — the 9 done runs 0.15")
    assert "0.00" not in line and "the others" not in line and "for the runs not done" not in line, line
    config = workflow_config(tmp_path / "gpu", GRIDS, qat={"epochs": 200})
    for rid in expand(config).runs:
        write_json(tmp_path / "gpu" / "runs" / rid / "metrics.json",
                   {"run_id": rid, "status": "ok", "epochs": 1, "wall_time_s": 600.0, "device": {"type": "cuda"}})
    line = format_status(read_status(config, TIMINGS)).splitlines()[-1]
    assert re.fullmatch(r"GPU-hours of training: 1\.50 spent — the 9 done runs 1\.50 \(budgeted [\d.]+\); the plan's "
                        r"training budget [\d.]+", line), line


def test_a_stale_log_on_another_host_is_a_stopped_run(tmp_path):
    other_host_log(tmp_path / "r", "r", age_s=3600)
    assert read_progress(tmp_path / "r", "r", 5).state == STOPPED
    other_host_log(tmp_path / "r", "r", age_s=10)
    assert read_progress(tmp_path / "r", "r", 5).state == RUNNING


def test_a_half_written_metrics_file_is_no_result_yet(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text('{"status": "o')
    assert read_progress(tmp_path / "r", "r", 5).state == MISSING


# Run in a fresh interpreter before fpq is imported: counts every resolution of a class's type hints
# and every file read through Path.read_text, then runs `fpq status`.
PROBE = """
import json, pathlib, sys, typing
hints, reads = [], []
resolve, read_text = typing.get_type_hints, pathlib.Path.read_text
def counted_hints(cls, *args, **kwargs):
    hints.append(f"{cls.__module__}.{cls.__qualname__}")
    return resolve(cls, *args, **kwargs)
def counted_read(self, *args, **kwargs):
    reads.append(str(self))
    return read_text(self, *args, **kwargs)
typing.get_type_hints, pathlib.Path.read_text = counted_hints, counted_read
from fpq.cli import main
main(["status", "--configfile", sys.argv[1]])
print("PROBE " + json.dumps({"hints": hints, "reads": reads, "torch": "torch" in sys.modules}))
"""


def test_the_paper_grid_reads_each_result_once_resolves_each_config_class_once_and_never_imports_torch(tmp_path):
    """Every run of config/paper.yaml done, each with 200 epochs of history, read by `fpq status` in a
    fresh interpreter: what keeps it fast (0.3 CPU s here, `python bench/bench_status.py`), as
    invariants instead of a clock: no torch, one read of each run's metrics.json and nothing else of
    a run's folder, and a config class's type hints resolved once however many runs use it (that
    resolution once dominated expanding the 411 run configs)."""
    path, runs = load_bench("bench_status").write_done_grid(REPO / "config" / "paper.yaml", tmp_path)
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{len(runs)} done" in out.stdout
    probe = json.loads(out.stdout.split("PROBE ", 1)[1])
    assert probe["torch"] is False
    run_folder = str(tmp_path / "results" / "runs") + os.sep
    assert sorted(r for r in probe["reads"] if r.startswith(run_folder)) == \
        sorted(str(tmp_path / "results" / "runs" / rid / "metrics.json") for rid in runs)
    fpq_classes = [h for h in probe["hints"] if h.startswith("fpq.")]
    assert "fpq.config.RunConfig" in fpq_classes
    assert len(fpq_classes) == len(set(fpq_classes)), probe["hints"]
