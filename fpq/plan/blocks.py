"""A study made of sittings: each sitting's results, committed as a *block*, count toward the study.

GPU time often comes in sittings (a device call pair, a spot instance, a cluster's wall-time limit
without a shared disk): what one sitting finishes must come back and add up with the next. A block
is one sitting, in a folder of its own, `<blocks>/<date>-<gpu>/`:

    run.json                         GPU, torch, code version, wall time, the teacher's top-1
    results/index.json               the sitting's run index (its plan)
    results/runs/<run id>/           metrics.json, hessian.json, variance.json, train.log, config.json
                                     of each run the sitting *finished* (no weights, no checkpoints)

A block trains its own FP teacher, and a student pairs only with students of the same block (the
same teacher). A seed is *finished* by a block when every QAT run the study plans for that seed has
its metrics.json there (ok, or failed: a diverged run is a result). The workflow schedules only the
seeds no block has finished (`sitting_config`); nothing a block finished is rerun, and what a time
box left unfinished is dropped when the block is made (`make_block`): its seed is redone, whole,
in a later block.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fpq.config import ConfigError, dict_differences, load_config, resume_identity, to_dict
from fpq.errors import DataError
from fpq.io import write_json
from fpq.plan.archive import RUN_FILES
from fpq.plan.grid import Plan, expand
from fpq.plan.index import RunIndex, read_index


@dataclass(frozen=True)
class Block:
    name: str
    path: Path
    info: dict  # run.json
    index: RunIndex

    @property
    def results(self) -> Path:
        return self.path / "results"

    def finished(self, run_id: str) -> bool:
        """The run has a result here (ok or failed)."""
        return run_id in self.index.runs and (self.results / "runs" / run_id / "metrics.json").is_file()


def read_block(path: str | Path) -> Block:
    path = Path(path)
    if not (path / "run.json").is_file():
        raise DataError(f"{path} is not a block: it has no run.json (make one with `fpq unpack PACK --block "
                        f"--into {path.parent}`)")
    try:
        info = json.loads((path / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}/run.json is not readable JSON ({err})") from None
    block = Block(path.name, path, info, read_index(path / "results" / "index.json"))
    check_agrees(block)
    return block


def check_agrees(block: Block) -> None:
    """A block's run.json says what its results hold (its finished runs, its teachers' top-1), else
    DataError: a run added, removed or edited by hand after `make_block` would count unseen."""
    runs = block.results / "runs"
    finished = sorted(p.name for p in runs.iterdir() if (p / "metrics.json").is_file()) if runs.is_dir() else []
    said = block.info.get("finished_runs")
    if said is not None and said != len(finished):
        raise DataError(f"block {block.path}: run.json says {said} finished runs, results/runs holds {len(finished)}: "
                        f"it was changed after it was made; make it again from its pack (`fpq unpack PACK --block`)")
    strays = [rid for rid in finished if rid not in block.index.runs]
    if strays:
        raise DataError(f"block {block.path}: results/runs/{strays[0]} is not in the block's index.json "
                        f"({len(strays)} such runs): it was added after the block was made")
    for rid, top1 in (block.info.get("teacher_top1") or {}).items():
        final = _metrics(runs / rid).get("final") or {}
        if final.get("top1") != top1:
            raise DataError(f"block {block.path}: run.json gives teacher {rid} top-1 {top1}, its metrics.json "
                            f"{final.get('top1')}: the block was changed after it was made")


def read_blocks(root: str | Path | None) -> list[Block]:
    """Every block under `root`, by name (a date first: the order they were made). No folder, or an
    empty setting, is a study with no block yet (its first sitting)."""
    if not root or not Path(root).is_dir():
        return []
    return [read_block(p) for p in sorted(Path(root).iterdir()) if p.is_dir() and not p.name.startswith(".")]


PLACE_KEYS = ("run_id", "teacher", "data.path", "data.root")  # where a run lived, not what it is


def recipe(run_config: dict, device_type: str) -> dict:
    """What a run is, wherever it ran: its identity on that device type (`resume_identity`: the CUDA
    overrides applied there) without paths."""
    data = resume_identity(load_config(run_config), device_type)
    for key in PLACE_KEYS:
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node.get(part, {})
        node.pop(last, None)
    return data


def check_recipes(plan: Plan, block: Block) -> None:
    """A block's runs were made by the study's recipe (else it belongs to another study: another
    schedule, another learning rate ...): DataError naming the key that differs."""
    for rid, run in plan.runs.items():
        folder = block.results / "runs" / rid
        metrics = _metrics(folder) if block.finished(rid) else {}
        if not metrics.get("config"):  # a failed run's record, or none: nothing to compare
            continue
        device = (metrics.get("device") or {}).get("type", "cpu")
        try:
            changed = dict_differences(recipe(metrics["config"], device), recipe(to_dict(run.config), device))
        except (ValueError, TypeError, ConfigError) as err:
            raise DataError(f"{folder}/metrics.json holds no run config ({err})") from None
        if changed:
            raise DataError(f"block {block.path}: {rid} was made by another recipe than this config's "
                            f"({'; '.join(changed[:3])}): it belongs to another study")


def finished_seeds(config: dict, blocks: list[Block]) -> dict[int, list[str]]:
    """{seed: names of the blocks that finished it}: every QAT run the study plans for that seed has
    a result in one and the same block (whose runs the study's recipe made: check_recipes)."""
    plan = expand(config)
    for block in blocks:
        check_recipes(plan, block)
    by_seed: dict[int, list[str]] = {}
    for rid in plan.ids("qat"):
        by_seed.setdefault(plan.runs[rid].cell.seed, []).append(rid)
    done = {seed: [b.name for b in blocks if all(b.finished(rid) for rid in ids)] for seed, ids in by_seed.items()}
    return {seed: names for seed, names in done.items() if names}


def counted_runs(results: str | Path, blocks: list[Block]) -> dict[str, str]:
    """{run id: block name} of each run under `results`/runs whose metrics.json a block already
    holds, byte for byte: that block's run, left in the results folder after it was packed."""
    runs, counted = Path(results) / "runs", {}
    for folder in sorted(runs.glob("*")) if runs.is_dir() else []:
        if not (folder / "metrics.json").is_file():
            continue
        ours = (folder / "metrics.json").read_bytes()
        for block in blocks:
            theirs = block.results / "runs" / folder.name / "metrics.json"
            if theirs.is_file() and theirs.read_bytes() == ours:
                counted[folder.name] = block.name
                break
    return counted


def check_counted_once(config: dict) -> None:
    """A sitting does not start over a results folder that holds runs a block already counts (the
    last sitting's, not cleared): its pack would bring them again, and its students would pair with
    that block's teacher. ConfigError naming the folder, the block and what to do."""
    blocks = read_blocks(blocks_folder(config))
    counted = counted_runs(config["results"], blocks) if blocks else {}
    if counted:
        rid, block = next(iter(counted.items()))
        raise ConfigError(f"results folder {config['results']} holds {len(counted)} runs that block {block} already "
                          f"counts ({rid} ...): a sitting over them would count them twice; move that folder "
                          f"aside (or delete it) before the next sitting")


def blocks_folder(config: dict) -> str:
    """The config's blocks folder ("": none); a schedule study's point keeps its own, q<epochs>/."""
    root = config.get("blocks") or ""
    if root and config.get("qat_schedule"):
        return str(Path(root) / f"q{config['qat']['epochs']}")
    return root


def sitting_config(config: dict) -> dict:
    """The config of the next sitting: the study's seeds that no block under `blocks:` finished
    (all of them when the config names no blocks). A copy; the study's config is left as it is."""
    blocks = read_blocks(blocks_folder(config))
    if not blocks:
        return config
    done = finished_seeds(config, blocks)
    sitting = copy.deepcopy(config)
    sitting["seeds"] = [s for s in config["seeds"] if s not in done]
    return sitting


def gpu_label(name: str | None) -> str:
    """A short, path-safe name of the device a block ran on.

    >>> gpu_label("NVIDIA H200"), gpu_label("NVIDIA H100 80GB HBM3"), gpu_label(None), gpu_label("none")
    ('h200', 'h100', 'cpu', 'cpu')
    """
    words = [w for w in re.split(r"[^a-z0-9]+", (name or "").lower()) if w and w not in ("nvidia", "tesla", "geforce")]
    return words[0] if words and words[0] not in ("none", "unknown", "cpu") else "cpu"


def _metrics(folder: Path) -> dict:
    try:
        return json.loads((folder / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _block_info(results: Path, index: RunIndex, info: dict, finished: list[str]) -> dict:
    """run.json of a block: what the pack said, plus what its results say (the teachers' top-1,
    the device and torch where the pack did not say)."""
    metrics = {rid: _metrics(results / "runs" / rid) for rid in finished}
    teachers = {rid: m for rid, m in metrics.items() if index.runs[rid].stage == "teacher"}
    some = next(iter(teachers.values()), None) or (metrics[finished[0]] if finished else {})
    device = some.get("device") or {}
    out = {**info}
    out.setdefault("gpu", device.get("name") if device.get("type") == "cuda" else "none")
    out.setdefault("torch", (some.get("packages") or {}).get("torch", "unknown"))
    out.setdefault("code", (some.get("code") or {}).get("git_commit", "unknown"))
    out.setdefault("date", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out["teacher_top1"] = {rid: (m.get("final") or {}).get("top1") for rid, m in teachers.items()
                           if m.get("status", "ok") == "ok"}
    out["finished_runs"] = len(finished)
    # the sitting's wall time as the GPU scripts measured it (every call), and the runs' own
    out["wall_s"] = info.get("snakemake_wall_s_all_calls", info.get("snakemake_wall_s"))
    out["runs_wall_s"] = round(sum(float(m.get("wall_time_s") or 0.0) for m in metrics.values()), 1)
    return out


def block_name(info: dict, root: Path) -> str:
    """<date>-<gpu>, with -2, -3 ... where a block of that name exists (two sittings in one day)."""
    base = f"{str(info.get('date', ''))[:10] or time.strftime('%Y-%m-%d')}-{gpu_label(info.get('gpu'))}"
    name, k = base, 2
    while (root / name).exists():
        name, k = f"{base}-{k}", k + 1
    return name


def make_block(unpacked: str | Path, root: str | Path, origin: str | None = None) -> Block:
    """A block under `root` from a results pack unpacked into `unpacked` (results/, run.json): its
    index and the files of each run it finished; runs the time box left unfinished are dropped.
    `origin` names the pack in errors (default: the folder)."""
    unpacked, root = Path(unpacked), Path(root)
    origin = origin or str(unpacked)
    results = unpacked / "results"
    index = read_index(results / "index.json")
    info = json.loads((unpacked / "run.json").read_text()) if (unpacked / "run.json").is_file() else {}
    finished = [rid for rid in index.runs if (results / "runs" / rid / "metrics.json").is_file()]
    if not finished:
        raise DataError(f"{origin}: no run of the pack finished (no metrics.json): nothing to make a block of")
    info = _block_info(results, index, info, finished)
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".block-", dir=root))  # hidden: read_blocks skips it
    try:
        (stage / "results").mkdir()
        shutil.copy2(results / "index.json", stage / "results" / "index.json")
        for rid in finished:
            (stage / "results" / "runs" / rid).mkdir(parents=True)
            for name in RUN_FILES:
                if (results / "runs" / rid / name).is_file():
                    shutil.copy2(results / "runs" / rid / name, stage / "results" / "runs" / rid / name)
        name = block_name(info, root)
        write_json(stage / "run.json", {**info, "block": name})
        stage.rename(root / name)  # the block appears whole or not at all
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return read_block(root / name)

