"""Synthetic workflow configs and result folders whose numbers are chosen so the answers are known."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from fpq.config import to_dict
from fpq.io import write_json
from fpq.plan.grid import expand, prepare_workflow_config
from fpq.plan.index import RunIndex
from fpq.run.cell import Cell

# What a run records about what made it (fpq.run.provenance), as the provenance stamp reads it.
MADE = {"code": {"git_commit": "0123456789abcdef", "git_dirty": False}, "device": {"type": "cpu", "name": "x86_64"},
        "packages": {"torch": "2.14.1"}}
BASE = {"name": "synthetic", "seeds": [0, 1, 2], "data": {"cifar10": {"source": "npz", "path": "x.npz"},
                                                          "cifar100": {"source": "npz", "path": "y.npz"}},
        "quant": {"sfp_p": 0.1}, "hessian": {"methods": ["lsq", "fpq"]}, "variance": {"methods": ["fp", "lsq", "fpq"]}}


def workflow_config(results: Path, grids: dict, **extra) -> dict:
    config = copy.deepcopy({**BASE, **extra})
    config.update(grids=grids, results=str(results), tables=str(results.parent / "tables"),
                  figures=str(results.parent / "figures"))
    return prepare_workflow_config(config)


def write_results(config: dict, top1: Callable[[Cell], float | None], trace: Callable[[Cell], float] = None,
                  variance: Callable[[Cell], float] = None, trajectory: Callable[[Cell], list] = None,
                  history: Callable[[Cell], list] = None, probes: int | None = None, sigma: float = 0.1) -> RunIndex:
    """metrics.json (+ hessian.json with `probes` if given, variance.json at `sigma`) for every run of
    the config; top1 None = failed. `history` gives a run's per-epoch rows (epoch, test_acc)."""
    plan = expand(config)
    results = Path(config["results"])
    for rid, run in plan.runs.items():
        folder, cell = results / "runs" / rid, run.cell
        value = top1(cell)
        identity = {"run_id": rid, "cell": cell.as_dict()}
        if value is None:
            write_json(folder / "metrics.json", {**identity, "status": "failed", "error": "DivergenceError: nan"})
            continue
        write_json(folder / "metrics.json", {**identity, **MADE, "config": to_dict(run.config), "status": "ok",
                                             "final": {"top1": value},
                                             "best": {"top1": value + 0.5, "epoch": 3},
                                             "hessian_trajectory": trajectory(cell) if trajectory else [],
                                             "history": history(cell) if history else []})
        if trace and rid in plan.hessian_ids:
            found = {"mean": trace(cell), **({"probes": probes} if probes else {})}
            write_json(folder / "hessian.json", {**identity, "status": "ok", "trace": found})
        if variance and rid in plan.variance_ids:
            write_json(folder / "variance.json", {**identity, "status": "ok", "sigma": sigma,
                                                  "logit_variance": variance(cell)})
    return RunIndex.from_plan(plan)
