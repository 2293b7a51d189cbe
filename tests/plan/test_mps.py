"""CUDA MPS for shared GPUs (fpq/plan/mps.py), with a stand-in `nvidia-cuda-mps-control` on the PATH:
a shell script that records its calls and makes the `control` pipe a real daemon would."""
import os
import stat

import pytest

from fpq.plan import mps

FAKE = """#!/bin/sh
echo "$* pipe=$CUDA_MPS_PIPE_DIRECTORY" >> "{calls}"
if [ "$1" = "-d" ]; then {start}; exit 0; fi
cat > /dev/null; exit 0
"""


@pytest.fixture
def fake_control(tmp_path, monkeypatch):
    def install(start='mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" && touch "$CUDA_MPS_PIPE_DIRECTORY/control"'):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / mps.CONTROL
        script.write_text(FAKE.format(calls=tmp_path / "calls.txt", start=start))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        return tmp_path / "calls.txt"
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path / "pipe"))
    return install


def test_nothing_happens_unless_asked(fake_control, monkeypatch):
    calls = fake_control()
    monkeypatch.delenv("FPQ_MPS", raising=False)
    assert mps.ensure_mps() is False and not calls.exists()


def test_the_daemon_is_started_once_and_then_reused(fake_control, monkeypatch, tmp_path):
    calls = fake_control()
    monkeypatch.setenv("FPQ_MPS", "1")
    assert mps.ensure_mps() is True
    assert mps.ensure_mps() is True
    lines = calls.read_text().splitlines()
    assert sum(line.startswith("-d ") for line in lines) == 1  # the second call found it running
    assert len(lines) == 2  # -d, then one query (get_server_list) by the second call
    assert os.environ["CUDA_MPS_PIPE_DIRECTORY"] == str(tmp_path / "pipe")


def test_without_the_control_binary_it_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FPQ_MPS", "1")
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path / "pipe"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-cuda-mps-control here
    assert mps.ensure_mps() is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not on the PATH" in err[0] and "time slicing" in err[0]


def test_a_daemon_that_fails_to_start_is_reported(fake_control, monkeypatch, capsys):
    fake_control(start='echo "cannot open the device" >&2; exit 3')
    monkeypatch.setenv("FPQ_MPS", "1")
    assert mps.ensure_mps() is False
    assert "exited 3: cannot open the device" in capsys.readouterr().err


def test_a_shared_slot_asks_for_mps(fake_control, monkeypatch, tmp_path):
    from fpq.plan import gpu_slots

    calls = fake_control()
    monkeypatch.setenv("FPQ_MPS", "1")
    monkeypatch.setenv("FPQ_GPU_SLOTS", "1")
    monkeypatch.setenv("FPQ_JOBS_PER_GPU", "2")
    monkeypatch.setenv("FPQ_GPU_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID"):  # set, then deleted: both undone after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(gpu_slots, "nvidia_smi_count", lambda: 0)
    monkeypatch.setattr(gpu_slots, "_held", [])
    try:
        assert gpu_slots.acquire_gpu_slot() == "0"
    finally:
        for fd in gpu_slots._held:
            os.close(fd)
    assert calls.read_text().startswith("-d ")
