"""A one-node SLURM cluster for the tests (start_cluster.sh / stop_cluster.sh beside this file),
and what its jobs asked for, got and saw."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTITION = "test"  # the test cluster's one partition (start_cluster.sh)
NOT_INSTALLABLE = 3  # install.sh --check: SLURM is missing (the tests install nothing)


class ClusterUnavailable(RuntimeError):
    """SLURM and munge are not installed on this machine."""


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        # The cluster's client commands (wrappers naming its slurm.conf) first on PATH, as env.sh does.
        self.env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
        self.env["PATH"] = f"{folder / 'bin'}:{os.environ.get('PATH', '')}"

    @classmethod
    def start(cls) -> "Cluster":
        # A short path: the munge socket lives in it (a socket path has at most 107 bytes).
        folder = Path(tempfile.mkdtemp(prefix="fpq-slurm-", dir="/tmp"))
        out = subprocess.run([str(HERE / "start_cluster.sh"), str(folder)], capture_output=True, text=True,
                             timeout=600)
        if out.returncode == NOT_INSTALLABLE:
            raise ClusterUnavailable(out.stderr.strip())
        if out.returncode != 0:
            raise RuntimeError(f"start_cluster.sh failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return cls(folder)

    def stop(self) -> None:
        subprocess.run([str(HERE / "stop_cluster.sh"), str(self.folder)], timeout=120, check=True)

    def daemons_alive(self) -> list[str]:
        """The daemons of this cluster still running (by the pids start_cluster.sh recorded)."""
        alive = []
        for pid_file in self.folder.glob("*.pid.own"):
            try:
                os.kill(int(pid_file.read_text()), 0)
                alive.append(pid_file.name.split(".")[0])
            except ProcessLookupError:
                pass
        return alive

    def command(self, *args: str) -> str:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30,
                              check=True).stdout

    def jobs(self) -> list[dict]:
        """Every job this cluster ran or runs (finished ones stay listed: MinJobAge is a day)."""
        fields = {"id": "%i", "name": "%j", "comment": "%k", "state": "%T", "partition": "%P"}
        out = self.command("squeue", "--states=all", "--noheader", "-o", "|".join(fields.values()))
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def job(self, job_id: str) -> dict:
        """`scontrol show job` as a dict: what the job asked for (TresPerJob, CPUs/Task,
        MinMemoryNode, Partition, TimeLimit) and got (TRES, JOB_GRES, NodeList)."""
        text = self.command("scontrol", "show", "job", "-d", job_id)
        return dict(re.findall(r"(\S+?)=(\S*)", text))

    def steps_seen(self, job_id: str) -> dict[str, dict]:
        """The environment of each step of a job, as its TaskProlog recorded it ('batch', '0', ...)."""
        seen = {}
        for path in self.folder.glob(f"steps/{job_id}.*.env"):
            seen[path.name.split(".")[1]] = dict(line.split("=", 1) for line in path.read_text().splitlines())
        return seen

    def cancel(self, job_id: str) -> None:
        self.command("scancel", job_id)

    def wait_for_job(self, comment: str, not_in: set[str], submitter: subprocess.Popen, timeout: float = 300) -> str:
        """The id of a running job with this comment, not among `not_in`, while `submitter` runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and submitter.poll() is None:
            for job in self.jobs():
                if job["comment"] == comment and job["state"] == "RUNNING" and job["id"] not in not_in:
                    return job["id"]
            time.sleep(0.5)
        raise TimeoutError(f"no running job {comment!r} (submitter's exit code {submitter.poll()}): {self.jobs()}")
