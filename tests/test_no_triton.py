"""A machine without Triton (the CPU-only torch build ships none): the kernel tests skip with the
reason, doctest collection of fpq/ works, and a run takes the torch path. Proven in a subprocess
whose `import triton` fails (a sitecustomize that refuses it), whatever this machine has."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = '''
    import importlib.abc
    import sys


    class NoTriton(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "triton" or name.startswith("triton."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None


    sys.meta_path.insert(0, NoTriton())
'''


def _without_triton(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCK))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, env=env, timeout=900)


def test_without_triton_the_kernel_tests_skip_saying_why_and_the_doctests_collect(tmp_path):
    probe = _without_triton(tmp_path, "-c", "import triton")
    assert probe.returncode != 0 and "No module named 'triton'" in probe.stderr  # the block works
    out = _without_triton(tmp_path, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/kernels", "fpq",
                          "tests/test_config.py")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert out.stdout.count("Triton is not installed") >= 4 and " passed" in out.stdout  # one skip line a module


def test_without_triton_a_run_asking_for_the_kernels_takes_the_torch_path(tmp_path, quick_teacher, mini_npz):
    from tests.conftest import qat_config

    cfg = qat_config(mini_npz, quick_teacher, "fpq", (2, 4), train=128, test=100)
    cfg["runtime"]["kernels"] = "triton"
    code = (f"import json; from fpq.config import load_config; from fpq.run.train import run; "
            f"run(load_config(json.loads({json.dumps(json.dumps(cfg))})), {str(tmp_path / 'run')!r})")
    out = _without_triton(tmp_path, "-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["precision"]["kernels"] == "triton" and metrics["precision"]["kernels_in_force"] == "torch"
