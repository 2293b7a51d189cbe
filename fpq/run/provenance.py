"""What every result file records about where and how it was produced."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from fpq.config import RuntimeConfig

PACKAGES = ("fpq", "torch", "torchvision", "numpy", "pandas", "snakemake")


def code_version() -> dict:
    """Git commit of the checkout fpq runs from, and whether it had uncommitted changes.

    FPQ_GIT_COMMIT, when set, wins: a copy of the tree on a GPU machine may carry a stale .git
    (it then reports the copy's first commit, "dirty"), so the GPU scripts pass the commit the copy
    was made from.
    """
    if os.environ.get("FPQ_GIT_COMMIT"):
        return {"git_commit": os.environ["FPQ_GIT_COMMIT"], "git_dirty": None, "source": "FPQ_GIT_COMMIT"}
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", None
    return {"git_commit": commit, "git_dirty": dirty}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: torch.device) -> dict:
    info = {"type": device.type, "platform": platform.platform(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def precision_policy(runtime: RuntimeConfig, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    return {
        "params": "fp32",
        "student_autocast": "bf16" if runtime.bf16 else "off",
        "teacher_autocast": "bf16" if runtime.teacher_bf16 else "off",
        "channels_last": runtime.channels_last,
        "compile": runtime.compile,
        "compile_mode": runtime.compile_mode if runtime.compile else None,
        "fused_optimizer": runtime.fused_optimizer,
        "fused_quant": runtime.fused_quant,
        "kernels": runtime.kernels,  # asked; metrics.json's kernels_in_force says what ran (fpq.run.kernel_check)
        "csd_compile": runtime.csd_compile,
        "teacher_cuda_graph": runtime.teacher_cuda_graph and cuda and not runtime.cuda_graph,
        "cuda_graph": runtime.cuda_graph and cuda,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else False,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if cuda else False,
        # CPU runs are bitwise reproducible for a seed; CUDA runs are reproducible up to the
        # nondeterminism of cuDNN/atomics and match only to seed noise.
        "bitwise_reproducible": not cuda,
    }


def provenance(runtime: RuntimeConfig, device: torch.device) -> dict:
    return {"code": code_version(), "packages": package_versions(), "device": device_info(device),
            "precision": precision_policy(runtime, device), "argv": sys.argv}
