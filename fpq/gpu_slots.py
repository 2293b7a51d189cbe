"""A pool of GPU slots for local Snakemake runs (Snakemake does not pick a device per job).

With `--resources gpu=N`, Snakemake runs at most N GPU jobs at once but tells none of them which
GPU to use. Each fpq job takes an exclusive `flock` on one slot file and exports
CUDA_VISIBLE_DEVICES for that slot before CUDA initializes. The kernel drops the lock when the
process ends, however it ends (exit, crash, SIGKILL), so a slot is never leaked.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

_held: list[int] = []  # open lock file descriptors, kept for the life of the process


def slot_count() -> int:
    """FPQ_GPU_SLOTS if set, else the number of visible GPUs (0 on a CPU-only machine)."""
    if os.environ.get("FPQ_GPU_SLOTS"):
        return int(os.environ["FPQ_GPU_SLOTS"])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def lock_dir() -> Path:
    return Path(os.environ.get("FPQ_GPU_LOCK_DIR", f"/tmp/fpq-gpu-slots-{os.getuid()}"))


def acquire_gpu_slot(timeout: float = 600.0) -> str | None:
    """Lock a free slot, set CUDA_VISIBLE_DEVICES to its device and return it; None without GPUs."""
    if _held:
        return os.environ.get("CUDA_VISIBLE_DEVICES")
    count = slot_count()
    if count == 0:
        return None
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    devices = visible[:count] if visible else [str(i) for i in range(count)]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for slot, device in enumerate(devices):
            fd = os.open(folder / f"slot{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held.append(fd)
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            return device
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU slot among {len(devices)} in {folder} after {timeout:.0f}s")
        time.sleep(0.2)  # a finishing job frees its slot a moment after Snakemake starts the next one
