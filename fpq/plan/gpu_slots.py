"""A pool of GPU slots for local Snakemake runs (Snakemake does not pick a device per job).

With `--resources gpu=N`, Snakemake runs at most N GPU jobs at once but tells none of them which
GPU to use. Each fpq job takes an exclusive `flock` on one slot file and exports
CUDA_VISIBLE_DEVICES for that slot before CUDA initializes. The kernel drops the lock when the
process ends, however it ends (exit, crash, SIGKILL), so a slot is never leaked.

CUDA reads CUDA_VISIBLE_DEVICES once, when the driver initializes, so this module never imports
torch: it counts GPUs with `nvidia-smi -L` (or takes an already-set CUDA_VISIBLE_DEVICES).
Environment:
  FPQ_JOBS_PER_GPU  jobs sharing one GPU (default 1): the way to run more jobs than GPUs.
  FPQ_MPS           1: jobs that share a GPU run under CUDA MPS, started if needed (fpq/plan/mps.py).
  FPQ_GPU_SLOTS     tests only: on a machine that shows no GPU, pretend devices 0..N-1 exist;
                    where GPUs are visible it may only lower their count, never add devices.
  FPQ_GPU_LOCK_DIR  the folder of lock files (default /tmp/fpq-gpu-slots-<uid>).
  SLURM_JOB_ID      set by SLURM, which has already assigned the job its GPU: nothing is locked.
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
import time
from pathlib import Path

from fpq.errors import ConfigError
from fpq.plan.mps import ensure_mps

_held: list[int] = []  # open lock file descriptors, kept for the life of the process


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "") or str(default)
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value


def jobs_per_gpu() -> int:
    return _env_int("FPQ_JOBS_PER_GPU", 1, 1)


def nvidia_smi_count() -> int:
    """GPUs listed by `nvidia-smi -L`; 0 when the binary is missing or fails (a CPU-only machine)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def visible_devices() -> list[str]:
    """The device ids jobs may use, found without initializing CUDA."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # "" or "-1" hides every GPU, as it does for CUDA
        listed = []
        for device in os.environ["CUDA_VISIBLE_DEVICES"].split(","):
            if not device.strip() or device.strip().startswith("-"):
                break  # CUDA ignores everything from the first invalid entry on
            listed.append(device.strip())
    else:
        listed = [str(i) for i in range(nvidia_smi_count())]
    if not os.environ.get("FPQ_GPU_SLOTS"):
        return listed
    wanted = _env_int("FPQ_GPU_SLOTS", 0, 0)
    if not listed:
        return [str(i) for i in range(wanted)]
    if wanted > len(listed):
        raise ConfigError(f"FPQ_GPU_SLOTS={wanted} but only {len(listed)} GPU(s) are visible; it is a "
                          f"test setting: set FPQ_JOBS_PER_GPU to run several jobs per GPU")
    return listed[:wanted]


def lock_dir() -> Path:
    return Path(os.environ.get("FPQ_GPU_LOCK_DIR", f"/tmp/fpq-gpu-slots-{os.getuid()}"))


def lock_name(device: str, job: int) -> str:
    """Named by the physical device, so pools with different CUDA_VISIBLE_DEVICES never collide."""
    return f"gpu{re.sub(r'[^A-Za-z0-9_-]', '_', device)}-{job}.lock"


def acquire_gpu_slot(timeout: float = 600.0) -> str | None:
    """Lock a free slot, set CUDA_VISIBLE_DEVICES to its device and return it; None without GPUs."""
    if os.environ.get("SLURM_JOB_ID"):
        return os.environ.get("CUDA_VISIBLE_DEVICES") or None
    if _held:
        return os.environ.get("CUDA_VISIBLE_DEVICES")
    devices, per_gpu = visible_devices(), jobs_per_gpu()
    if not devices:
        return None
    # Job-major order: every GPU gets its first job before any GPU gets a second one.
    slots = [(device, job) for job in range(per_gpu) for device in devices]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for device, job in slots:
            fd = os.open(folder / lock_name(device, job), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held.append(fd)
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            if per_gpu > 1:
                ensure_mps()
            return device
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU slot among {len(slots)} in {folder} after {timeout:.0f}s")
        time.sleep(0.2)  # a finishing job frees its slot a moment after Snakemake starts the next one
