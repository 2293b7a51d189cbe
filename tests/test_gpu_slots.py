import os
import signal
import subprocess
import sys
import time

import pytest


def start(tmp_path, hold):
    env = {**os.environ, "FPQ_GPU_SLOTS": "2", "FPQ_GPU_LOCK_DIR": str(tmp_path)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen([sys.executable, "-m", "fpq.cli", "gpu-slot", "--hold", str(hold)],
                            stdout=subprocess.PIPE, text=True, env=env)


def first_line(proc):
    return proc.stdout.readline().strip()


def test_concurrent_jobs_get_distinct_slots_and_a_killed_job_frees_its_slot(tmp_path):
    a = start(tmp_path, 30)
    first = first_line(a)
    b = start(tmp_path, 30)
    second = first_line(b)
    assert {first, second} == {"0", "1"}
    a.send_signal(signal.SIGKILL)  # dies without cleanup: the kernel drops its lock
    a.wait()
    c = start(tmp_path, 0)
    assert first_line(c) == first
    for p in (b, c):
        p.kill()
        p.wait()


def test_no_gpus_means_cpu(monkeypatch):
    from fpq import gpu_slots

    monkeypatch.setenv("FPQ_GPU_SLOTS", "0")
    monkeypatch.setattr(gpu_slots, "_held", [])
    assert gpu_slots.acquire_gpu_slot() is None


def test_slots_map_onto_already_visible_devices(tmp_path, monkeypatch):
    from fpq import gpu_slots

    monkeypatch.setenv("FPQ_GPU_SLOTS", "2")
    monkeypatch.setenv("FPQ_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    monkeypatch.setattr(gpu_slots, "_held", [])
    assert gpu_slots.acquire_gpu_slot() == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    for fd in gpu_slots._held:
        os.close(fd)
