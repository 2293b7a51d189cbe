"""CUDA MPS for jobs that share a GPU (FPQ_JOBS_PER_GPU > 1), when asked with FPQ_MPS=1.

Separate processes on one GPU take turns (time slicing) unless NVIDIA's Multi-Process Service
runs: then their kernels run side by side. `ensure_mps()` points this process at an MPS pipe
folder (CUDA_MPS_PIPE_DIRECTORY, default /tmp/fpq-mps-<uid>) and starts the control daemon there
if none answers, under a lock so that jobs starting together start one daemon. Where MPS cannot
run (no `nvidia-cuda-mps-control`, a start that fails) it says so in one line and the jobs share
the GPU by time slicing, as without it. Never imports torch: it must run before CUDA initializes.

The daemon outlives the jobs (it is cheap when idle); stop it with
    echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/fpq-mps-$(id -u) nvidia-cuda-mps-control
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

CONTROL = "nvidia-cuda-mps-control"


def mps_requested() -> bool:
    return os.environ.get("FPQ_MPS", "") not in ("", "0")


def pipe_dir() -> Path:
    return Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or f"/tmp/fpq-mps-{os.getuid()}")


def daemon_running(folder: Path) -> bool:
    """The control daemon of this pipe folder answers (its `control` pipe exists and a query works)."""
    if not (folder / "control").exists():
        return False
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(folder)}
    try:
        out = subprocess.run([CONTROL], input="get_server_list\n", capture_output=True, text=True, env=env, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def start_daemon(folder: Path) -> str | None:
    """Start the control daemon for `folder`; None on success, else why not (one line)."""
    if shutil.which(CONTROL) is None:
        return f"{CONTROL} is not on the PATH"
    logs = folder.parent / f"{folder.name}-log"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(folder), "CUDA_MPS_LOG_DIRECTORY": str(logs)}
    try:
        out = subprocess.run([CONTROL, "-d"], capture_output=True, text=True, env=env, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{CONTROL} -d failed ({err})"
    if out.returncode != 0:
        return f"{CONTROL} -d exited {out.returncode}: {' '.join((out.stderr or out.stdout).split())[:200]}"
    return None


def ensure_mps() -> bool:
    """With FPQ_MPS=1: this process will use MPS (started here if needed); True if it does."""
    if not mps_requested():
        return False
    folder = pipe_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        why = None if daemon_running(folder) else start_daemon(folder)
    if why is not None:
        print(f"fpq: FPQ_MPS=1 but MPS cannot run here ({why}): jobs share the GPU by time slicing",
              file=sys.stderr)
        return False
    os.environ["CUDA_MPS_PIPE_DIRECTORY"] = str(folder)
    return True
