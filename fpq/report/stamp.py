"""What made an output: the provenance stamp every table, the claims and every figure carry.

A table made from 300 test images and one QAT epoch must not look like one made from the whole
CIFAR-10 and 200 epochs. The stamp says, from the result files alone (never from the config grid,
so a pack regenerates the same stamp anywhere): the config's name (from the run index), the data
(dataset, source, train / test images), the teacher and QAT epochs, the seeds with a result, the
code version and the device. Where runs differ, every distinct value is listed.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fpq.report.pooling import teacher_text
from fpq.report.results import Collected
from fpq.run.cell import DATASET_LABELS

CIFAR_SIZES = {"train": 50_000, "test": 10_000}  # a torchvision download is the whole set
SEP = " · "


@dataclass(frozen=True)
class Stamp:
    config: str
    data: str
    epochs: str
    seeds: str
    code: str
    device: str
    blocks: str = ""  # the blocks pooled, each with its teacher's top-1 (fpq.report.pooling); "" for one folder

    def line(self) -> str:
        """One line for a caption or a footer.

        >>> Stamp("ci", "CIFAR-10 (x.npz), 500 train / 300 test images", "teacher 2 epochs, QAT 1 epoch",
        ...       "seeds 0, 1", "code 8db9658", "CPU (x86_64), torch 2.14.1").line()
        'Made from config ci · CIFAR-10 (x.npz), 500 train / 300 test images · teacher 2 epochs, QAT 1 epoch · seeds 0, 1 · code 8db9658 · CPU (x86_64), torch 2.14.1'
        """
        parts = [f"Made from config {self.config}", self.data, self.epochs, self.seeds, self.blocks, self.code,
                 self.device]
        return SEP.join(p for p in parts if p)


def _distinct(values) -> list:
    return sorted({v for v in values if v not in (None, "")}, key=str)


def _images(data: dict, split: str, seen: int | None) -> str:
    subset = int(data.get(f"{split}_subset") or 0)
    if subset:
        return f"{subset:,}"
    if split == "train" and seen:
        return f"{seen:,}"
    return f"{CIFAR_SIZES[split]:,}" if data.get("source") == "torchvision" else "all"


def data_text(made: list[dict]) -> str:
    """'CIFAR-10 (tests/data/x.npz), 500 train / 300 test images'; one entry per distinct data."""
    texts = []
    for m in made:
        data = m.get("data") or {}
        if not data:
            continue
        where = data.get("path") if data.get("source") == "npz" else f"torchvision download into {data.get('root')}"
        texts.append(f"{DATASET_LABELS.get(data.get('dataset'), data.get('dataset'))} ({where}), "
                     f"{_images(data, 'train', m.get('train_images'))} train / {_images(data, 'test', None)} "
                     f"test images")
    return "; ".join(_distinct(texts)) or "data unrecorded"


def _epochs(made: list[dict], what: str) -> str:
    epochs = _distinct(m.get("epochs") for m in made)
    if not epochs:
        return f"{what} —"
    return f"{what} {', '.join(str(e) for e in epochs)} epoch{'' if epochs == [1] else 's'}"


def code_text(made: list[dict]) -> str:
    versions = _distinct(str(m["code"].get("git_commit", "unknown"))[:7]
                         + (" (uncommitted changes)" if m["code"].get("git_dirty") else "")
                         for m in made if m.get("code"))
    return "code " + (", ".join(versions) if versions else "unrecorded")


def device_text(made: list[dict]) -> str:
    def name(device: dict) -> str:
        return device.get("name", "?") if device.get("type") == "cuda" else f"CPU ({device.get('name', '?')})"

    devices = _distinct(name(m["device"]) for m in made if m.get("device"))
    torch = _distinct(m.get("torch") for m in made)
    text = ", ".join(devices) if devices else "device unrecorded"
    return text + (f", torch {', '.join(torch)}" if torch else "")


def stamp(collected: Collected, run_ids: list[str] | None = None) -> Stamp:
    """The stamp of what is built from `run_ids` (default: every run of the index) and their
    teachers: the runs among them with a result file (ok or failed)."""
    runs = collected.runs
    if run_ids is not None:
        mine = runs[runs.run_id.isin(run_ids)]
        runs = runs[runs.run_id.isin(set(run_ids) | set(mine.teacher.dropna()))]
    runs = runs[runs.status != "missing"]
    made = [m for m in runs.made if isinstance(m, dict)]
    by_stage = {stage: [m for m, s in zip(runs.made, runs.stage) if s == stage and isinstance(m, dict)]
                for stage in ("teacher", "qat")}
    seeds = sorted({int(s) for s in runs.seed if not pd.isna(s)})
    if not seeds:
        return Stamp(collected.name or "unnamed", "", "", "no run has a result yet", "", "")
    seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    return Stamp(collected.name or "unnamed", data_text(made),
                 f"{_epochs(by_stage['teacher'], 'teacher')}, {_epochs(by_stage['qat'], 'QAT')}", seeds_text,
                 code_text(made), device_text(made), blocks_text(collected, set(runs.block)))


def blocks_text(collected: Collected, present: set) -> str:
    """'blocks 2026-12-04-h200 (teacher 87.17%), 2026-12-06-h100 (teacher 87.40%)': the pooled blocks
    with a run among those stamped; "" where nothing is pooled."""
    named = [b for b in collected.blocks if b in present]
    if not named:
        return ""
    return f"block{'s' if len(named) > 1 else ''} " + ", ".join(f"{b} ({teacher_text(collected, b)})" for b in named)
