import os
import select
import signal
import subprocess
import sys

import pytest

from fpq.errors import ConfigError
from fpq.plan import gpu_slots

POOL_VARS = ("FPQ_GPU_SLOTS", "FPQ_JOBS_PER_GPU", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")


def fake_gpu_box(tmp_path, gpus: int, exit_code: int = 0) -> dict:
    """An environment whose PATH starts with a fake `nvidia-smi` listing `gpus` GPUs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    lines = "".join(f"echo 'GPU {i}: NVIDIA Fake (UUID: GPU-{i:04d})'\n" for i in range(gpus))
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{lines}exit {exit_code}\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in POOL_VARS}
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "FPQ_GPU_LOCK_DIR": str(tmp_path / "locks")}


def start(env, hold, **extra):
    return subprocess.Popen([sys.executable, "-m", "fpq.cli", "gpu-slot", "--hold", str(hold)],
                            stdout=subprocess.PIPE, text=True, env={**env, **extra})


def first_line(proc):
    return proc.stdout.readline().strip()


def prints_within(proc, seconds):
    return bool(select.select([proc.stdout], [], [], seconds)[0])


def stop(*procs):
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture
def pool(monkeypatch, tmp_path):
    """An in-process pool on a clean environment; its locks are released afterwards."""
    for name in POOL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FPQ_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(gpu_slots, "_held", [])
    yield monkeypatch
    for fd in gpu_slots._held:
        os.close(fd)


def test_concurrent_jobs_get_distinct_slots_and_a_killed_job_frees_its_slot(tmp_path):
    env = fake_gpu_box(tmp_path, 2)
    a = start(env, 30)
    first = first_line(a)
    b = start(env, 30)
    second = first_line(b)
    assert {first, second} == {"0", "1"}
    a.send_signal(signal.SIGKILL)  # dies without cleanup: the kernel drops its lock
    a.wait()
    c = start(env, 0)
    assert first_line(c) == first
    stop(b, c)


def test_acquiring_a_slot_counts_gpus_without_importing_torch(tmp_path):
    code = "import sys; from fpq.plan.gpu_slots import acquire_gpu_slot; print(acquire_gpu_slot(), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=fake_gpu_box(tmp_path, 2), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["0", "False"]


def test_a_failing_nvidia_smi_means_cpu(tmp_path, pool):
    pool.setenv("PATH", fake_gpu_box(tmp_path, 2, exit_code=9)["PATH"])
    assert gpu_slots.acquire_gpu_slot() is None


def test_two_jobs_per_gpu_share_it_and_a_third_waits(tmp_path):
    env = fake_gpu_box(tmp_path, 1)
    a, b = start(env, 30, FPQ_JOBS_PER_GPU="2"), start(env, 30, FPQ_JOBS_PER_GPU="2")
    assert first_line(a) == first_line(b) == "0"
    c = start(env, 0, FPQ_JOBS_PER_GPU="2")
    assert not prints_within(c, 1.5)  # both slots of the one GPU are taken
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert first_line(c) == "0"
    assert sorted(os.listdir(tmp_path / "locks")) == ["gpu0-0.lock", "gpu0-1.lock"]
    stop(b, c)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_jobs_per_gpu_must_be_a_positive_integer(pool, value):
    pool.setenv("FPQ_GPU_SLOTS", "1")
    pool.setenv("FPQ_JOBS_PER_GPU", value)
    with pytest.raises(ConfigError, match=f"FPQ_JOBS_PER_GPU must be an integer >= 1, got '{value}'"):
        gpu_slots.acquire_gpu_slot()


def test_slot_count_override_never_adds_devices(tmp_path, pool):
    pool.setenv("PATH", fake_gpu_box(tmp_path, 1)["PATH"])
    pool.setenv("FPQ_GPU_SLOTS", "2")
    with pytest.raises(ConfigError, match="only 1 GPU"):
        gpu_slots.acquire_gpu_slot()


def test_no_gpus_means_cpu(pool):
    pool.setenv("FPQ_GPU_SLOTS", "0")
    assert gpu_slots.acquire_gpu_slot() is None


def test_slots_map_onto_already_visible_devices(pool):
    pool.setenv("FPQ_GPU_SLOTS", "2")
    pool.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert gpu_slots.acquire_gpu_slot() == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"


def test_pools_with_different_visible_devices_do_not_collide(tmp_path, pool):
    pool.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpu_slots.acquire_gpu_slot() == "0"
    first_pool = gpu_slots._held.pop()  # still locked; this process now plays a second pool
    pool.setenv("CUDA_VISIBLE_DEVICES", "GPU-1a2b:3c")
    assert gpu_slots.acquire_gpu_slot(timeout=0.5) == "GPU-1a2b:3c"
    assert sorted(os.listdir(tmp_path / "locks")) == ["gpu0-0.lock", "gpuGPU-1a2b_3c-0.lock"]
    os.close(first_pool)


def test_slurm_jobs_keep_their_assigned_gpu_and_lock_nothing(tmp_path, pool):
    pool.setenv("SLURM_JOB_ID", "42")
    pool.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpu_slots.acquire_gpu_slot() == "2,3" and os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    pool.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu_slots.acquire_gpu_slot() is None
    assert not gpu_slots._held and not (tmp_path / "locks").exists()
