"""Pack a workflow's results for the trip back from a GPU machine, and unpack them into the suite.

What travels is what the tables are built from and what a reader checks them against: the run
index, every run's metrics.json, hessian.json, variance.json and train.log (never weights or
checkpoints), the tables, the figures, a run.json saying where and how it ran, and manifest.json,
the SHA-256 of every other member. One gzipped tar, a few MB: the device tool brings back at most
8 files.

Unpacking is all or nothing: the pack is read whole into a hidden folder beside the target, checked
against its manifest (a pack made before manifests were written has only gzip's own check), then
moved in. A truncated, damaged or tampered pack is refused with one line and leaves nothing.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from fpq.errors import DataError
from fpq.io import atomic_write

RUN_FILES = ("metrics.json", "hessian.json", "variance.json", "train.log", "config.json")
MANIFEST = "manifest.json"
TOP = ("results", "tables", "figures")


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


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def pack(results: str | Path, tables: str | Path, figures: str | Path, out: str | Path, info: dict) -> Path:
    files = members(Path(results), Path(tables), Path(figures))
    if not files or files[0][1] != "results/index.json":
        raise DataError(f"{results}/index.json does not exist: nothing to pack")
    now = time.time()
    blobs = [(name, path.read_bytes(), path.stat().st_mtime) for path, name in files]  # mtimes kept: Snakemake reads them
    blobs.append(("run.json", (json.dumps(info, indent=2) + "\n").encode(), now))
    manifest = (json.dumps({name: digest(blob) for name, blob, _ in blobs}, indent=1) + "\n").encode()

    def write(handle) -> None:
        with tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name, blob, mtime in [*blobs, (MANIFEST, manifest, now)]:
                entry = tarfile.TarInfo(name)
                entry.size, entry.mode, entry.mtime = len(blob), 0o644, mtime
                tar.addfile(entry, io.BytesIO(blob))

    return atomic_write(out, write)


def _check_members(archive: Path, names: list[str]) -> None:
    stray = [n for n in names if n not in ("run.json", MANIFEST) and n.split("/")[0] not in TOP]
    if stray or any(n.startswith("/") or ".." in n.split("/") for n in names):
        raise DataError(f"{archive} is not an fpq results pack (unexpected members: {stray[:3]}): nothing unpacked")


def _check_manifest(archive: Path, stage: Path) -> None:
    """Every file of the unpacked pack has the digest its manifest gives, and nothing is missing or added."""
    if not (stage / MANIFEST).is_file():
        return  # a pack written before manifests: gzip's CRC was the only check
    try:
        manifest = json.loads((stage / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{archive}: its manifest is not readable ({err}): nothing unpacked") from None
    found = {str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file()} - {MANIFEST}
    if found != set(manifest):
        odd = sorted(found ^ set(manifest))
        raise DataError(f"{archive}: {odd[0]} is {'not in' if odd[0] in found else 'missing from'} the pack its "
                        f"manifest describes ({len(odd)} such files): tampered or damaged, nothing unpacked")
    bad = [name for name in sorted(manifest) if digest((stage / name).read_bytes()) != manifest[name]]
    if bad:
        raise DataError(f"{archive}: {bad[0]} differs from the digest its manifest gives ({len(bad)} such files): "
                        f"tampered or damaged, nothing unpacked")


def unpack(archive: str | Path, into: str | Path) -> list[Path]:
    """Extract a pack into `into` (results/, tables/, figures/, run.json); refuses anything else, and
    a truncated, damaged or tampered pack, before `into` gets a file."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".unpack-", dir=into))
    try:
        try:
            raw = gzip.decompress(archive.read_bytes())  # the whole stream: its CRC and length are checked
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
                names = tar.getnames()
                _check_members(archive, names)
                tar.extractall(stage, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"{archive} is not a readable results pack ({type(err).__name__}: {err}): "
                            f"nothing unpacked") from None
        _check_manifest(archive, stage)
        (stage / MANIFEST).unlink(missing_ok=True)
        placed = []
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            target = into / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            placed.append(target)
        return placed
    finally:
        shutil.rmtree(stage, ignore_errors=True)
