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


def bad_cases(tmp: Path) -> dict:
    """name -> (fpq arguments, text the error must contain). Each is also listed in README's bad-input table."""
    (tmp / "broken.yaml").write_text("grids: [unclosed\n")
    (tmp / "notzip.npz").write_bytes(b"\x93NUMPY not a zip archive at all")
    np.savez(tmp / "notest.npz", **{**make_arrays(), "x_test": np.zeros((0, 32, 32, 3), np.uint8),
                                    "y_test": np.zeros(0, np.int64)})
    np.savez(tmp / "good.npz", **make_arrays())
    (tmp / "a_file").write_text("x")
    run = ["qat", "--config-json"]

    def qat(path, **data):
        import json
        return run + [json.dumps({"arch": "resnet20", "method": "lsq", "teacher": "t.pt",
                                  "data": {"source": "npz", "path": str(path), **data}}), "--out", str(tmp / "out")]

    return {
        "budget: malformed YAML": (["budget", "--configfile", str(tmp / "broken.yaml")], "is not valid YAML"),
        "budget: missing config": (["budget", "--configfile", str(tmp / "none.yaml")], "does not exist"),
        "budget: missing timings": (["budget", "--timings", str(tmp / "none.yaml")], "timings file"),
        "variance --images 0": (["variance", "--model", "m.pt", "--out", "o.json", "--images", "0"],
                                "argument --images: must be >= 1"),
        "variance negative --sigma": (["variance", "--model", "m.pt", "--out", "o.json", "--sigma", "-0.1"],
                                      "argument --sigma: must be > 0"),
        "hessian --probes 1": (["hessian", "--model", "m.pt", "--out", "o.json", "--probes", "1"],
                               "argument --probes: must be >= 2"),
        "hessian into a file": (["hessian", "--model", "m.pt", "--out", str(tmp / "a_file" / "h.json")],
                                "cannot be written: it is not a folder"),
        "qat into a file": (qat(tmp / "notzip.npz")[:-1] + [str(tmp / "a_file" / "run")], "cannot be written"),
        "npz not a zip": (qat(tmp / "notzip.npz"), "is not a .npz (zip) archive"),
        "empty test split": (qat(tmp / "notest.npz"), "no test images"),
        "train_subset too large": (qat(tmp / "good.npz", train_subset=100), "data.train_subset"),
        "train_subset below the classes": (qat(tmp / "good.npz", train_subset=5), "data.train_subset"),
        "tables: missing index": (["tables", "--index", str(tmp / "none.json")], "run index"),
        "fetch-data offline": (["fetch-data", "--dataset", "cifar10", "--root", str(tmp / "data")], "source: npz"),
    }


CASES = ["budget: malformed YAML", "budget: missing config", "budget: missing timings", "variance --images 0",
         "variance negative --sigma", "hessian --probes 1", "hessian into a file", "qat into a file",
         "npz not a zip", "empty test split", "train_subset too large", "train_subset below the classes",
         "tables: missing index",
         "fetch-data offline"]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_ends_as_one_error_line_not_a_traceback(name, tmp_path):
    cases = bad_cases(tmp_path)
    assert set(cases) == set(CASES)
    args, expected = cases[name]
    # fetch-data offline: a proxy that refuses every connection stands for "no internet" on any machine
    out = fpq(*args, env={"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert expected in out.stderr, out.stderr[-2000:]


def test_bad_inputs_are_listed_in_the_readme():
    listed = (REPO / "docs" / "errors.md").read_text()
    for name in CASES:
        assert f"| {name} |" in listed, name


LIGHT = ["--help", "budget", "runs", "index --help", "budget --gpus 0", "qat --config"]


@pytest.mark.parametrize("argv", LIGHT)
def test_light_commands_and_argument_errors_do_not_import_torch(argv):
    code = ("import sys\nfrom fpq.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *argv.split()], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert "TORCH False" in out.stdout, out.stdout + out.stderr


def test_defaults_resolve_against_the_project_from_any_folder(tmp_path):
    out = fpq("budget", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "train_qat" in out.stdout
    runs = fpq("runs", "--configfile", "config/ci.yaml", cwd=tmp_path)
    assert runs.returncode == 0 and "resnet20_cifar10_fp_s0" in runs.stdout
    missing = fpq("budget", "--configfile", "config/nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "looked in" in missing.stderr and str(REPO) in missing.stderr
