"""Atomic outputs and safe checkpoint loading.

Every file a later step reads (checkpoints, metrics, Hessian results, tables, data caches) is
written to a temporary file in the same folder, flushed, fsynced and renamed: a killed job
leaves either the old file or the new one, never a half-written file under the final name.
Outputs get the permissions the user's umask gives any new file (mkstemp alone makes them 0600,
unreadable to collaborators).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fpq.errors import CheckpointError, OutputError

TMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call write(fileobj) on a temporary file, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process umask, read from /proc where possible: os.umask can only be read by setting it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o077)  # restored at once; 0o077 is the safe value to be seen in between
    os.umask(mask)
    return mask


def ensure_writable(folder: str | Path) -> Path:
    """Create `folder` and prove it takes a file, so a job fails before its work, not after it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fpq-write-check.", suffix=TMP_SUFFIX, dir=folder)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as err:
        reason = "it is not a folder" if folder.exists() and not folder.is_dir() else err.strerror or str(err)
        raise OutputError(f"output folder {folder} cannot be written: {reason}") from None
    return folder


def failed_run(model_path: str | Path) -> dict | None:
    """The metrics of the run beside `model_path` if that run ended as failed (and left no model):
    what a measurement of it, or a QAT run taught by it, finds instead of weights."""
    metrics = Path(model_path).parent / "metrics.json"
    if Path(model_path).exists() or not metrics.exists():
        return None
    data = read_json(metrics)
    return data if data.get("status") == "failed" else None


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_torch(path: str | Path, obj: Any) -> Path:
    import torch  # here, not at the top: the tables and index commands never load torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_torch(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load with weights_only=True (no arbitrary code); clear errors on damage."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    if not zipfile.is_zipfile(path) and not _starts_as_zip(path):  # torch.save writes a zip archive
        advice = "" if what == "checkpoint" else "; a model is a run's model.pt"
        raise CheckpointError(f"{what} {path} is not a file torch.save wrote ({_looks_like(path)}{advice})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, foreign object: torch's first line, not its advice
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise CheckpointError(f"{what} {path} is truncated or corrupt ({type(err).__name__}: {first})") from None


def _starts_as_zip(path: Path) -> bool:
    """A zip's local header: a truncated torch file keeps it, though its directory at the end is gone."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _looks_like(path: Path) -> str:
    """What a file that is not a torch file seems to be, for the error line."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "it is empty"
    try:
        text = head.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return "it is binary, of another format"
    return "it is JSON text, e.g. a run's metrics.json" if text.startswith(("{", "[")) else "it is text"
