"""Where one run stands, read from its folder alone: done, running, stopped, failed or missing.

Torch-free and quick (a stat, and at most metrics.json or failed.json and train.log read), so
`fpq status` can read every run of the paper grid in well under a second while Snakemake runs, on
this machine or on a cluster's shared filesystem. The files are those `fpq.run.train` writes:
metrics.json (status ok or failed), failed.json (a crash), train.log (an `== attempt N: <time> on
<host>, pid <pid>` line per attempt, then one line per completed epoch with its seconds).

A run with a train.log and no result is *running* while its process lives: checked by pid on this
host; on another host (a cluster node) it counts as running while its log was written within the
last STALE_S seconds (or three of its epochs, if longer), and as *stopped* after. A stopped run
(killed mid-epoch, a lost node) resumes from its last checkpoint when the workflow reruns it.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

DONE, RUNNING, STOPPED, FAILED, MISSING = "done", "running", "stopped", "failed", "missing"
STATES = (DONE, RUNNING, STOPPED, FAILED, MISSING)
METRICS, FAILED_FILE, LOG = "metrics.json", "failed.json", "train.log"  # fpq.run.train's names
STALE_S = 900.0  # a run on another host with no log line for this long is taken as stopped
ATTEMPT = re.compile(r"^== attempt (\d+): .* on (\S+), pid (\d+)$")
EPOCH = re.compile(r"\] epoch (\d+)/(\d+) .*\| ([\d.]+)s/epoch")
RESUMED = re.compile(r"\] resuming after epoch (\d+)")


@dataclass(frozen=True)
class Progress:
    run_id: str
    state: str  # one of STATES
    epoch: int = 0  # epochs completed
    epochs: int = 0  # of the run's schedule (0: not known yet)
    epoch_seconds: float = math.nan  # mean of the last attempt's logged epochs
    eta_seconds: float = math.nan  # running: what the remaining epochs take at that pace
    wall_seconds: float = 0.0  # spent on training: a done run's wall time, else its logged epochs
    error: str = ""  # a failed run's error line
    where: str = ""  # host and pid of the last attempt
    device: str = ""  # a done run's device type (metrics.json `device.type`: "cpu", "cuda"); "" unknown

    def describe(self) -> str:
        """One line for `fpq status`: what the run is doing, or why it stopped."""
        if self.state == FAILED:
            return self.error
        if self.state in (RUNNING, STOPPED):
            pace = "" if math.isnan(self.epoch_seconds) else f", {self.epoch_seconds:.1f} s/epoch"
            if self.state == RUNNING:
                if not self.epoch:
                    return f"started, no epoch of {self.epochs or '?'} done yet ({self.where})"
                eta = "" if math.isnan(self.eta_seconds) else f", ETA {_duration(self.eta_seconds)}"
                return f"epoch {self.epoch}/{self.epochs or '?'} done{pace}{eta} ({self.where})"
            return (f"stopped after epoch {self.epoch}/{self.epochs or '?'}{pace} ({self.where}); a rerun resumes "
                    f"from its last checkpoint")
        return ""


def _duration(seconds: float) -> str:
    """
    >>> _duration(42), _duration(754), _duration(9000)
    ('42 s', '12.6 min', '2.5 h')
    """
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent, or half-written by a job being killed: no result yet


def first_line(error: str) -> str:
    return (error or "unknown error").strip().splitlines()[0] if (error or "").strip() else "unknown error"


def alive(host: str, pid: int) -> bool | None:
    """Whether the attempt's process still runs: True/False on this host, None on another."""
    if host != platform.node():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:  # a reused pid is not an fpq run
        return b"fpq" in cmdline.read_bytes() if cmdline.exists() else True
    except OSError:
        return True


@dataclass(frozen=True)
class LogState:
    epoch: int
    epochs: int
    seconds: list[float]  # every logged epoch's seconds, all attempts
    recent: list[float]  # the last attempt's
    host: str
    pid: int


def read_log(path: Path) -> LogState | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    epoch = epochs = pid = 0
    host, seconds, recent = "", [], []
    for line in lines:
        if m := ATTEMPT.match(line):
            host, pid, recent, epoch = m.group(2), int(m.group(3)), [], 0
        elif m := EPOCH.search(line):
            epoch, epochs = int(m.group(1)), int(m.group(2))
            seconds.append(float(m.group(3)))
            recent.append(float(m.group(3)))
        elif m := RESUMED.search(line):
            epoch = int(m.group(1))
    return LogState(epoch, epochs, seconds, recent, host, pid) if host else None


def read_progress(folder: Path, run_id: str, epochs: int = 0, now: float | None = None) -> Progress:
    """The run in `folder`; `epochs` is its schedule (from the plan), `now` the clock (time.time())."""
    import time

    now = time.time() if now is None else now
    metrics = _json(folder / METRICS)
    if metrics is not None and metrics.get("status", "ok") == "ok":
        device = metrics.get("device")
        return Progress(run_id, DONE, epochs or metrics.get("epochs", 0), epochs or metrics.get("epochs", 0),
                        wall_seconds=float(metrics.get("wall_time_s") or 0.0),
                        device=str(device.get("type", "")) if isinstance(device, dict) else "")
    if metrics is not None:
        return Progress(run_id, FAILED, epochs=epochs, error=first_line(metrics.get("error", "")))
    log = read_log(folder / LOG)
    crashed = _json(folder / FAILED_FILE)
    if log is None:
        if crashed is not None:
            return Progress(run_id, FAILED, epochs=epochs, error=first_line(crashed.get("error", "")))
        return Progress(run_id, MISSING, epochs=epochs)
    pace = sum(log.recent[-5:]) / len(log.recent[-5:]) if log.recent else math.nan
    since = now - (folder / LOG).stat().st_mtime
    live = alive(log.host, log.pid)
    if live is None:  # another host: judged by how fresh its log is
        live = since < max(STALE_S, 3 * pace if not math.isnan(pace) else 0.0)
    total = log.epochs or epochs
    if crashed is not None and not live:
        return Progress(run_id, FAILED, log.epoch, total, wall_seconds=sum(log.seconds),
                        error=first_line(crashed.get("error", "")))
    eta = math.nan
    if live and not math.isnan(pace) and total:
        eta = max(0.0, (total - log.epoch) * pace - min(since, pace))
    return Progress(run_id, RUNNING if live else STOPPED, log.epoch, total, pace, eta, sum(log.seconds),
                    where=f"{log.host}, pid {log.pid}")
