"""Interrupted runs resume bitwise; bad input is refused naming the cause; NaN stops a run."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fpq.cli import main
from fpq.config import load_config
from fpq.io import atomic_write, read_json
from fpq.run.build import save_model
from tests.conftest import make_arrays, qat_config, teacher_config, write_yaml


def fpq_cmd(*args):
    return [sys.executable, "-m", "fpq.cli", *args]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(quick_teacher, mini_npz, tmp_path):
    cfg = qat_config(mini_npz, quick_teacher, "fpq", (2, 4), epochs=3, train=512, test=100)
    cfg["runtime"].update(threads=1, progress=True)
    cfg["hessian"] = {"every": 1, "probes": 2, "batch_size": 16}
    path = write_yaml(tmp_path / "run.yaml", cfg)
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(fpq_cmd("qat", "--config", str(path), "--out", str(full)), check=True, capture_output=True)

    proc = subprocess.Popen(fpq_cmd("qat", "--config", str(path), "--out", str(killed)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.7)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"] in (1, 2)
    rerun = subprocess.run(fpq_cmd("qat", "--config", str(path), "--out", str(killed)), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming after epoch" in rerun.stderr

    a, b = read_json(full / "metrics.json"), read_json(killed / "metrics.json")
    timings = ("epoch_time", "eval_time", "hessian_time", "first_step_time")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timings} for r in rows]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert a["final"] == b["final"] and a["hessian_trajectory"] == b["hessian_trajectory"]
    sa = torch.load(full / "model.pt", weights_only=True)["state_dict"]
    sb = torch.load(killed / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _bad_inputs(tmp_path, npz, teacher):
    """(name, config dict, files to create, expected text in the error). Add items here."""
    a = make_arrays
    good = lambda **q: qat_config(npz, teacher, "fpq", (2, 4), train=64, test=20, **q)  # noqa: E731

    def data(path):
        cfg = good()
        cfg["data"] = {"source": "npz", "path": str(path)}
        return cfg

    other_arch = tmp_path / "r18_teacher.pt"
    save_model(other_arch, torch.nn.Linear(1, 1), load_config({**teacher_config(npz), "arch": "resnet18"}))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(teacher.read_bytes()[:2000])
    cifar100_teacher = tmp_path / "c100.pt"
    c100 = load_config({**teacher_config(npz), "data": {"dataset": "cifar100", "source": "npz", "path": "x"}})
    save_model(cifar100_teacher, torch.nn.Linear(1, 1), c100)
    return [
        ("unknown key", {**good(), "optimiser": {}}, {}, "optimiser: unknown key"),
        ("wrong type", {**good(), "seed": "zero"}, {}, "seed: expected int"),
        ("bits 1", good() | {"quant": {"w_bits": 1, "a_bits": 4}}, {}, "quant.w_bits: must be in 2..8"),
        ("bits 9", good() | {"quant": {"w_bits": 4, "a_bits": 9}}, {}, "quant.a_bits: must be in 2..8"),
        ("dataset", {**good(), "data": {"dataset": "svhn"}}, {}, "data.dataset: 'svhn'"),
        ("arch", {**good(), "arch": "vgg"}, {}, "arch: 'vgg' is not one of"),
        ("method", {**good(), "method": "apot"}, {}, "method: 'apot' is not one of"),
        ("p above 1", good(sfp_p=1.2), {}, "quant.sfp_p: must be in [0, 1]"),
        ("p below 0", good(sfp_p=-0.5), {}, "quant.sfp_p: must be in [0, 1]"),
        ("negative epochs", good() | {"optim": {"epochs": -3, "lr": 0.01}}, {}, "optim.epochs: must be >= 1"),
        ("negative lr", good() | {"optim": {"epochs": 1, "lr": -0.01}}, {}, "optim.lr: must be > 0"),
        ("missing npz", data(tmp_path / "none.npz"), {}, "none.npz does not exist"),
        ("corrupt npz", data(tmp_path / "c.npz"), {"c.npz": b"garbage"}, "not a readable .npz"),
        ("missing keys", data(tmp_path / "k.npz"), {"k.npz": {"x_train": a()["x_train"]}}, "missing keys"),
        ("wrong dtype", data(tmp_path / "d.npz"),
         {"d.npz": {**a(), "x_test": a()["x_test"].astype(np.float64)}}, "x_test has dtype float64"),
        ("wrong shape", data(tmp_path / "s.npz"),
         {"s.npz": {**a(), "x_train": a()["x_train"][:, :16]}}, "x_train has shape (40, 16, 32, 3)"),
        ("label range", data(tmp_path / "l.npz"), {"l.npz": {**a(), "y_train": a()["y_train"] * 3}},
         "outside [0, 10)"),
        ("teacher arch", {**good(), "teacher": str(other_arch)}, {},
         "does not fit this run: the teacher's arch is 'resnet18', this run's 'resnet20'"),
        ("teacher dataset", {**good(), "teacher": str(cifar100_teacher)}, {},
         "does not fit this run: the teacher's dataset is 'cifar100', this run's 'cifar10'"),
        ("teacher missing", {**good(), "teacher": str(tmp_path / "none.pt")}, {},
         f"teacher {tmp_path / 'none.pt'} does not exist (looked for {tmp_path / 'none.pt'})"),
        ("teacher truncated", {**good(), "teacher": str(truncated)}, {}, f"teacher {truncated} is truncated or corrupt"),
        ("train_subset", data(npz) | {"data": {"source": "npz", "path": str(npz), "train_subset": 5}}, {},
         "data.train_subset is 5, below the minimum of 10"),
        ("resume truncated", good(), {"out/checkpoint.pt": b"PK\x03\x04trunc"}, "checkpoint.pt is truncated"),
    ]


BAD_NAMES = ["unknown key", "wrong type", "bits 1", "bits 9", "dataset", "arch", "method", "p above 1",
             "p below 0", "negative epochs", "negative lr", "missing npz", "corrupt npz", "missing keys",
             "wrong dtype", "wrong shape", "label range", "teacher arch", "teacher dataset", "teacher missing",
             "teacher truncated", "train_subset", "resume truncated"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_is_refused_naming_the_cause_and_leaves_no_half_made_run_folder(name, tmp_path, mini_npz,
                                                                                    quick_teacher, capsys):
    items = {item[0]: item[1:] for item in _bad_inputs(tmp_path, mini_npz, quick_teacher)}
    assert set(items) == set(BAD_NAMES)
    cfg, files, expected = items[name]
    for rel, content in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            np.savez(target, **content)
        else:
            target.write_bytes(content)
    path = write_yaml(tmp_path / "bad.yaml", cfg)
    code = main(["qat", "--config", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err
    # refused before the run folder gets a file: only what the test put there (a checkpoint) is in it
    out, placed = tmp_path / "out", {rel.removeprefix("out/") for rel in files if rel.startswith("out/")}
    left = sorted(os.listdir(out)) if out.exists() else []
    assert left == sorted(placed), left


def test_a_failed_teacher_is_recorded_as_a_failed_result_not_refused_as_bad_input(mini_npz, tmp_path, capsys):
    """The teacher check runs before the run folder is made, yet a failed teacher is a result: the
    workflow (--record-failures) gets a finished run marked failed, naming the teacher."""
    from fpq.io import write_json

    teacher = tmp_path / "teacher"
    write_json(teacher / "metrics.json", {"run_id": "resnet20_cifar10_fp_s0", "status": "failed",
                                          "error": "DivergenceError: diverged at epoch 3"})
    path = write_yaml(tmp_path / "run.yaml", qat_config(mini_npz, teacher / "model.pt", "lsq", train=64, test=20))
    code = main(["qat", "--config", str(path), "--out", str(tmp_path / "out"), "--record-failures"])
    assert code == 0, capsys.readouterr().err
    metrics = read_json(tmp_path / "out" / "metrics.json")
    assert metrics["status"] == "failed" and "TeacherFailed: teacher resnet20_cifar10_fp_s0 failed" in metrics["error"]


def test_nan_loss_stops_the_run_nonzero_without_metrics(quick_teacher, mini_npz, tmp_path, monkeypatch, capsys):
    import fpq.method.objective

    original = fpq.method.objective.Objective.__call__

    def poisoned(self, x, y):
        loss, logits = original(self, x, y)
        return loss * float("nan"), logits

    monkeypatch.setattr(fpq.method.objective.Objective, "__call__", poisoned)
    path = write_yaml(tmp_path / "run.yaml", qat_config(mini_npz, quick_teacher, "lsq", (4, 4), train=64, test=20))
    code = main(["qat", "--config", str(path), "--out", str(tmp_path / "out")])
    assert code == 1
    assert "diverged at epoch 1" in capsys.readouterr().err
    assert not (tmp_path / "out" / "metrics.json").exists()
    failed = read_json(tmp_path / "out" / "failed.json")
    assert "DivergenceError" in failed["error"]


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def dies(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, dies)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]  # no temporary left behind


def test_a_stale_checkpoint_of_another_config_is_not_resumed(quick_teacher, mini_npz, tmp_path, capsys):
    from fpq.run.train import run

    base = qat_config(mini_npz, quick_teacher, "lsq", (4, 4), train=64, test=20)
    base["runtime"]["progress"] = True
    run(load_config(base), tmp_path)
    changed = {**base, "quant": {**base["quant"], "w_bits": 2}}
    m = run(load_config(changed), tmp_path)
    assert "belongs to another run (quant.w_bits: 4 -> 2); starting over" in capsys.readouterr().err
    assert m["cell"]["w_bits"] == 2 and len(m["history"]) == 1


def test_thread_count_and_device_spelling_do_not_discard_a_checkpoint(quick_teacher, mini_npz, tmp_path, capsys):
    """Snakemake caps threads at --cores: resuming with fewer cores must keep the finished epochs."""
    from fpq.run.train import run

    base = qat_config(mini_npz, quick_teacher, "lsq", (4, 4), train=64, test=20)
    base["runtime"].update(progress=True, threads=2, device="cpu")
    run(load_config(base), tmp_path)
    resumed = {**base, "runtime": {**base["runtime"], "threads": 1, "device": "cpu:0"}}
    run(load_config(resumed), tmp_path)
    err = capsys.readouterr().err
    assert "resuming after epoch 1" in err and "starting over" not in err
    log = (tmp_path / "train.log").read_text()
    assert "== attempt 1:" in log and "== attempt 2:" in log and "resuming after epoch 1" in log
