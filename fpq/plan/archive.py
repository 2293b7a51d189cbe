"""Pack a workflow's results for the trip back from a GPU machine, and unpack them into the suite.

What travels is what the tables are built from and what a reader checks them against: the run
index, every run's metrics.json, hessian.json, variance.json and train.log (never weights or
checkpoints), the tables, the figures, and a run.json saying where and how it ran. One gzipped
tar, a few MB: the device tool brings back at most 8 files.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from fpq.errors import DataError
from fpq.io import atomic_write

RUN_FILES = ("metrics.json", "hessian.json", "variance.json", "train.log", "config.json")


def members(results: Path, tables: Path, figures: Path) -> list[tuple[Path, str]]:
    """(file, name in the archive) of everything that travels."""
    found = [(results / "index.json", "results/index.json")]
    for folder in sorted((results / "runs").glob("*")):
        found += [(folder / name, f"results/runs/{folder.name}/{name}") for name in RUN_FILES
                  if (folder / name).is_file()]
    for label, root in (("tables", tables), ("figures", figures)):
        found += [(f, f"{label}/{f.name}") for f in sorted(root.glob("*"))
                  if f.is_file() and not f.name.endswith(".log")]
    return [(f, name) for f, name in found if f.is_file()]


def pack(results: str | Path, tables: str | Path, figures: str | Path, out: str | Path, info: dict) -> Path:
    files = members(Path(results), Path(tables), Path(figures))
    if not files or files[0][1] != "results/index.json":
        raise DataError(f"{results}/index.json does not exist: nothing to pack")

    def write(handle) -> None:
        with tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for path, name in files:
                tar.add(path, arcname=name)
            blob = (json.dumps(info, indent=2) + "\n").encode()
            entry = tarfile.TarInfo("run.json")
            entry.size = len(blob)
            tar.addfile(entry, io.BytesIO(blob))

    return atomic_write(out, write)


def unpack(archive: str | Path, into: str | Path) -> list[Path]:
    """Extract a pack into `into` (results/, tables/, figures/, run.json); refuses anything else."""
    into = Path(into)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            stray = [n for n in names if n != "run.json" and n.split("/")[0] not in ("results", "tables", "figures")]
            if stray or any(n.startswith("/") or ".." in n.split("/") for n in names):
                raise DataError(f"{archive} is not an fpq results pack (unexpected members: {stray[:3]})")
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"{archive} is not a readable results pack ({err})") from None
    return [into / n for n in names]
