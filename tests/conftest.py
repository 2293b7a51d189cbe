"""Shared fixtures: the real CIFAR-10 fixture, tiny synthetic archives, a short-trained teacher."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
# Real CIFAR-10 images shipped with the repository (tests/data/make_fixture.py): 2,000 train and
# 500 test, 200 and 50 per class, lossless. config/ci.yaml reads the same file.
FIXTURE_NPZ = REPO / "tests" / "data" / "cifar10-fixture.npz"
FIXTURE_TRAIN, FIXTURE_TEST = 2000, 500
# Plug-in files are loaded by FPQ_PLUGINS in the processes a test starts (tests/test_extension.py), never
# imported by collection: a plug-in registers its piece and method in the process that imports it.
collect_ignore = ["plugins"]


@pytest.fixture(scope="session")
def mini_npz() -> Path:
    """The fixture's path. Missing means a broken checkout: the tests that need it fail, never skip."""
    if not FIXTURE_NPZ.is_file():
        pytest.fail(f"the CIFAR-10 fixture {FIXTURE_NPZ} is missing: it is part of the repository "
                    f"(rebuild it with tests/data/make_fixture.py)")
    return FIXTURE_NPZ


def make_arrays(n_train: int = 40, n_test: int = 20, classes: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
            "y_train": np.arange(n_train) % classes,
            "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
            "y_test": np.arange(n_test) % classes}


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    path = tmp_path / "tiny.npz"
    np.savez(path, **make_arrays())
    return path


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def teacher_config(npz: Path, epochs: int = 1, train: int = 500, test: int = 200, **extra) -> dict:
    return {"arch": "resnet20", "method": "fp", "seed": 0, "run_id": "teacher",
            "data": {"source": "npz", "path": str(npz), "train_subset": train, "test_subset": test},
            "optim": {"epochs": epochs, "lr": 0.1, "batch_size": 128},
            "runtime": {"device": "cpu", "threads": 2, "progress": False}, **extra}


def qat_config(npz: Path, teacher: Path, method: str = "lsq", bits=(4, 4), epochs: int = 1, train: int = 500,
               test: int = 200, **quant) -> dict:
    return {"arch": "resnet20", "method": method, "seed": 0, "run_id": f"qat_{method}", "teacher": str(teacher),
            "data": {"source": "npz", "path": str(npz), "train_subset": train, "test_subset": test},
            "optim": {"epochs": epochs, "lr": 0.01, "batch_size": 128},
            "quant": {"w_bits": bits[0], "a_bits": bits[1], "calib_images": 32, **quant},
            "runtime": {"device": "cpu", "threads": 2, "progress": False}}


@pytest.fixture(scope="session")
def trained_teacher(tmp_path_factory, mini_npz) -> Path:
    """ResNet-20 trained 8 epochs on the fixture's 2,000 real CIFAR-10 images, tested on its 500
    (about a minute on 2 cores)."""
    from fpq.config import load_config
    from fpq.run.train import run

    out = tmp_path_factory.mktemp("teacher")
    run(load_config(teacher_config(mini_npz, epochs=8, train=FIXTURE_TRAIN, test=FIXTURE_TEST)), out)
    return out / "model.pt"


@pytest.fixture(scope="session")
def quick_teacher(tmp_path_factory, mini_npz) -> Path:
    """One epoch on 500 images: a valid teacher file for plumbing tests."""
    from fpq.config import load_config
    from fpq.run.train import run

    out = tmp_path_factory.mktemp("quick_teacher")
    run(load_config(teacher_config(mini_npz, epochs=1)), out)
    return out / "model.pt"


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """`fpq.run.train.run` sets the process's thread count (runtime.threads): no test leaks it to the next."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
