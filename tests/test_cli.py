"""The command line: errors as `fpq: error: ...` (never a traceback), no torch for the light commands,
defaults found from any working directory."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_arrays

REPO = Path(__file__).resolve().parent.parent


def fpq(*args, cwd=REPO, env=None):
    return subprocess.run([sys.executable, "-m", "fpq.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def save_models(tmp: Path, npz: Path) -> dict:
    """Untrained but valid model files (an FP ResNet-20 teacher on `npz`, one of another arch) and
    a truncated copy: enough for every check that runs before the work starts."""
    import torch

    from fpq.config import load_config
    from fpq.run.build import save_model, skeleton

    teacher = {"arch": "resnet20", "method": "fp", "data": {"source": "npz", "path": str(npz)}}
    cfg = load_config(teacher)
    paths = {"teacher": tmp / "teacher.pt", "r18": tmp / "r18.pt", "truncated": tmp / "truncated.pt"}
    save_model(paths["teacher"], skeleton(cfg), cfg)
    save_model(paths["r18"], torch.nn.Linear(1, 1), load_config({**teacher, "arch": "resnet18"}))
    paths["truncated"].write_bytes(paths["teacher"].read_bytes()[:2000])
    paths["text"] = tmp / "notes.txt"
    paths["text"].write_text("not a model\n")
    paths["metrics"] = tmp / "run" / "metrics.json"
    paths["metrics"].parent.mkdir()
    paths["metrics"].write_text('{"run_id": "resnet20_cifar10_fp_s0", "status": "ok"}\n')
    paths["checkpoint"] = save_a_checkpoint(tmp / "run", cfg)
    return paths


def save_a_checkpoint(folder: Path, cfg) -> Path:
    """The checkpoint.pt a run writes after each epoch (fpq.run.train.save_checkpoint)."""
    import torch

    from fpq.run.build import skeleton
    from fpq.run.train import RunState, make_optimizer, save_checkpoint

    model = skeleton(cfg)
    optimizer, scheduler = make_optimizer(cfg, model)
    save_checkpoint(folder, cfg, torch.device("cpu"), RunState(1), model, optimizer, scheduler)
    return folder / "checkpoint.pt"


def bad_cases(tmp: Path) -> dict:
    """name -> (fpq arguments, text the error must contain). Each is also listed in docs/errors.md.
    Every output goes to tmp/out (a run folder) or tmp/m (a measurement's folder): bad input must
    leave neither behind."""
    import json

    (tmp / "broken.yaml").write_text("grids: [unclosed\n")
    (tmp / "typo.yaml").write_text("grids: {main: {datasets: [cifar10], archs: [resnet20], bits: [w2a4], "
                                   "method: [lsq]}}\n")
    (tmp / "notzip.npz").write_bytes(b"\x93NUMPY not a zip archive at all")
    np.savez(tmp / "notest.npz", **{**make_arrays(), "x_test": np.zeros((0, 32, 32, 3), np.uint8),
                                    "y_test": np.zeros(0, np.int64)})
    np.savez(tmp / "good.npz", **make_arrays())
    (tmp / "a_file").write_text("x")
    models = save_models(tmp, tmp / "good.npz")

    def qat(path=tmp / "good.npz", teacher=models["teacher"], out=tmp / "out", runtime=None, extra=None, **data):
        return ["qat", "--config-json", json.dumps({
            "arch": "resnet20", "method": "lsq", "teacher": str(teacher), "runtime": runtime or {"device": "cpu"},
            "data": {"source": "npz", "path": str(path), **data}, **(extra or {})}), "--out", str(out)]

    (tmp / "run.yaml").write_text(f"arch: resnet20\nmethod: lsq\nteacher: {models['teacher']}\n"
                                  f"data: {{source: npz, path: {tmp / 'good.npz'}}}\nruntime: {{device: cpu}}\n")
    (tmp / "two_typos.yaml").write_text("grids: {main: {datasets: [cifar10], archs: [resnet20], bits: [w2a4], "
                                        "methods: [lsq]}}\nseedz: [0]\ntables_dir: x\n")

    def measure(command, model=models["teacher"], *extra):
        return [command, "--model", str(model), "--out", str(tmp / "m" / "r.json"), *extra]

    return {
        "budget: malformed YAML": (["budget", "--configfile", str(tmp / "broken.yaml")],
                                   f"workflow config {tmp / 'broken.yaml'} is not valid YAML: line 2, column 1"),
        "qat: malformed YAML": (["qat", "--config", str(tmp / "broken.yaml"), "--out", str(tmp / "out")],
                                f"config file {tmp / 'broken.yaml'} is not valid YAML: line 2, column 1"),
        "budget: typo in a key": (["budget", "--configfile", str(tmp / "typo.yaml")],
                                  f"workflow config {tmp / 'typo.yaml'}: grids.main.method: unknown key "
                                  f"(did you mean 'grids.main.methods'?)"),
        "budget: missing config": (["budget", "--configfile", str(tmp / "none.yaml")], "does not exist"),
        "budget: missing timings": (["budget", "--timings", str(tmp / "none.yaml")], "timings file"),
        "variance --images 0": (["variance", "--model", "m.pt", "--out", "o.json", "--images", "0"],
                                "argument --images: must be >= 1"),
        "variance negative --sigma": (["variance", "--model", "m.pt", "--out", "o.json", "--sigma", "-0.1"],
                                      "argument --sigma: must be > 0"),
        "hessian --probes 1": (["hessian", "--model", "m.pt", "--out", "o.json", "--probes", "1"],
                               "argument --probes: must be >= 2"),
        "hessian into a file": (["hessian", "--model", str(models["teacher"]), "--out", str(tmp / "a_file" / "h.json")],
                                "cannot be written: it is not a folder"),
        "hessian: truncated model": (measure("hessian", models["truncated"]),
                                     f"model file {models['truncated']} is truncated or corrupt"),
        "hessian: missing model": (measure("hessian", tmp / "none.pt"),
                                   f"model file {tmp / 'none.pt'} does not exist (looked for {tmp / 'none.pt'})"),
        "variance --device cuda without CUDA": (measure("variance", models["teacher"], "--device", "cuda"),
                                                "CUDA is not available"),
        "qat into a file": (qat(out=tmp / "a_file" / "run"), "cannot be written"),
        "qat: missing teacher": (qat(teacher="runs/none/model.pt"),
                                 f"teacher runs/none/model.pt does not exist (looked for {Path.cwd()}"),
        "qat: teacher of another arch": (qat(teacher=models["r18"]),
                                         "the teacher's arch is 'resnet18', this run's 'resnet20'"),
        "qat: truncated teacher": (qat(teacher=models["truncated"]), f"teacher {models['truncated']} is truncated"),
        "qat: device cuda without CUDA": (qat(runtime={"device": "cuda"}), "CUDA is not available"),
        "npz not a zip": (qat(tmp / "notzip.npz"), "is not a .npz (zip) archive"),
        "empty test split": (qat(tmp / "notest.npz"), "no test images"),
        "train_subset too large": (qat(train_subset=100), "data.train_subset"),
        "train_subset below the classes": (qat(train_subset=5), "data.train_subset"),
        "tables: missing index": (["tables", "--index", str(tmp / "none.json")], "run index"),
        "fetch-data offline": (["fetch-data", "--dataset", "cifar10", "--root", str(tmp / "data")], "source: npz"),
        "qat: a text file as teacher": (qat(teacher=models["text"]),
                                        f"teacher {models['text']} is not a file torch.save wrote (it is text; "
                                        f"a model is a run's model.pt)"),
        "qat: metrics.json as teacher": (qat(teacher=models["metrics"]), "it is JSON text, e.g. a run's metrics.json; "
                                                                         "a model is a run's model.pt"),
        "qat: checkpoint.pt as teacher": (qat(teacher=models["checkpoint"]),
                                          f"teacher {models['checkpoint']} is a training checkpoint (for resuming a "
                                          f"run), not a model: use the model.pt a finished run writes beside it "
                                          f"({models['checkpoint'].with_name('model.pt')})"),
        "qat: two unknown keys": (qat(extra={"optimiser": {"epochs": 1}, "seedz": 1}),
                                  "optimiser: unknown key (did you mean 'optim'?); seedz: unknown key (did you mean "
                                  "'seed'?)"),
        "budget: two unknown keys": (["budget", "--configfile", str(tmp / "two_typos.yaml")],
                                     "seedz: unknown key (did you mean 'seeds'?); tables_dir: unknown key (did you "
                                     "mean 'tables'?)"),
        "qat: a bad --set value": (["qat", "--config", str(tmp / "run.yaml"), "--set", "optim.epochs=0", "--out",
                                    str(tmp / "out")], "fpq: error: --set optim.epochs=0: optim.epochs: must be >= 1"),
    }


CASES = ["budget: malformed YAML", "qat: malformed YAML", "budget: typo in a key", "budget: missing config", "budget: missing timings",
         "variance --images 0", "variance negative --sigma", "hessian --probes 1", "hessian into a file",
         "hessian: truncated model", "hessian: missing model", "variance --device cuda without CUDA",
         "qat into a file", "qat: missing teacher", "qat: teacher of another arch", "qat: truncated teacher",
         "qat: device cuda without CUDA", "npz not a zip", "empty test split", "train_subset too large",
         "train_subset below the classes", "tables: missing index", "fetch-data offline",
         "qat: a text file as teacher", "qat: metrics.json as teacher", "qat: checkpoint.pt as teacher",
         "qat: two unknown keys", "budget: two unknown keys", "qat: a bad --set value"]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_ends_as_one_error_line_not_a_traceback(name, tmp_path):
    if "cuda without CUDA" in name:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    cases = bad_cases(tmp_path)
    assert set(cases) == set(CASES)
    args, expected = cases[name]
    # fetch-data offline: a proxy that refuses every connection stands for "no internet" on any machine
    out = fpq(*args, env={"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert expected in out.stderr, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()  # argparse's errors follow its usage lines; fpq's stand alone
    assert len(lines) == 1 or not lines[-1].startswith("fpq: error: "), out.stderr
    assert "<unicode string>" not in out.stderr, out.stderr
    # refused before the work starts: no half-made run folder (config.json, train.log), no empty folder
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists()


def test_bad_inputs_are_listed_in_the_readme():
    listed = (REPO / "docs" / "errors.md").read_text()
    for name in CASES:
        assert f"| {name} |" in listed, name


LIGHT = ["--help", "budget", "status", "runs", "index --help", "budget --gpus 0", "qat --config"]


@pytest.mark.parametrize("argv", LIGHT)
def test_light_commands_and_argument_errors_do_not_import_torch(argv):
    code = ("import sys\nfrom fpq.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *argv.split()], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert "TORCH False" in out.stdout, out.stdout + out.stderr


def test_the_main_jobs_cost_is_stated_once_as_fpq_budget_prints_it():
    """config/config.yaml and the README give the quick run's cost: the figure `fpq budget` prints."""
    import re

    total = re.search(r"total: (\S+) GPU-hours", fpq("budget").stdout).group(1)
    comments = " ".join(line.lstrip("# ") for line in (REPO / "config" / "config.yaml").read_text().splitlines()
                        if line.startswith("#"))
    assert re.findall(r"(\S+) GPU-hours", comments) == [total] and "an hour" not in comments, comments
    paragraph = next(p for p in (REPO / "README.md").read_text().split("\n\n") if "quick reproduction**" in p)
    assert re.findall(r"(\S+) GPU-hours", paragraph) == [total], paragraph


def test_defaults_resolve_against_the_project_from_any_folder(tmp_path):
    out = fpq("budget", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "train_qat" in out.stdout
    runs = fpq("runs", "--configfile", "config/ci.yaml", cwd=tmp_path)
    assert runs.returncode == 0 and "resnet20_cifar10_fp_s0" in runs.stdout
    missing = fpq("budget", "--configfile", "config/nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "looked in" in missing.stderr and str(REPO) in missing.stderr
