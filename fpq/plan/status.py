"""`fpq status`: where a campaign stands, per grid and cell, read from its run folders.

For every cell of every grid (a cell: dataset, arch, bits, method and p, over its seeds; the
teachers first, as their own section) the runs done, running, stopped, failed and missing; under
the counts, one line for every run not done nor missing (the epoch and ETA of a running run from
its own epoch times, the error line of a failed one, where a stopped one stopped), then the
measurements and the GPU-hours spent against the budget. Torch-free and read-only: usable while
Snakemake runs, locally or from a cluster's submit host on the shared filesystem.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fpq.plan.budget import gpu_share, load_timings, run_seconds
from fpq.plan.grid import Plan, expand
from fpq.plan.progress import DONE, FAILED, RUNNING, STATES, STOPPED, Progress, read_progress
from fpq.run.cell import DATASET_LABELS, Cell, arch_label, bits_label, method_label

TEACHERS = "teachers"


@dataclass(frozen=True)
class Status:
    plan: Plan
    results: Path
    runs: dict[str, Progress]  # by run id, every run of the plan
    measured: dict[str, tuple[int, int]]  # "hessian"/"variance" -> (done, planned)
    spent_done_s: float  # GPU-seconds the done runs took (their wall time; a shared GPU counted by its share)
    spent_other_s: float  # ... the unfinished and failed runs took (their logged epochs)
    done_budget_s: float  # what the budget gave the done runs
    budget_s: float  # the whole plan's training budget (fpq budget's train_teacher + train_qat)

    def sections(self) -> dict[str, dict[str, list[str]]]:
        """{grid: {cell label: run ids}}: the teachers, then each grid's cells (a run answering two
        grids is in both)."""
        out: dict[str, dict[str, list[str]]] = {TEACHERS: {}}
        for rid, run in self.plan.runs.items():
            if run.teacher_id is None:
                out[TEACHERS].setdefault(cell_label(run.cell), []).append(rid)
        for grid, pairs in self.plan.grids.items():
            cells = out.setdefault(grid, {})
            for cell, rid in sorted(pairs, key=lambda pair: pair[0].sort_key()):
                ids = cells.setdefault(cell_label(cell), [])
                if rid not in ids:
                    ids.append(rid)
        return out


def cell_label(cell: Cell) -> str:
    """'CIFAR-10 ResNet-20 W2A4 FPQ p=0.1' (no seed: a cell's row counts its seeds' runs)."""
    bits = f" {bits_label(cell.w_bits, cell.a_bits)}" if cell.is_qat else ""
    p = f" p={cell.p:g}" if cell.p is not None else ""
    return f"{DATASET_LABELS.get(cell.dataset, cell.dataset)} {arch_label(cell.arch)}{bits} {method_label(cell.method)}{p}"


def _measured(folder: Path, ids: list[str], name: str) -> tuple[int, int]:
    return sum((folder / rid / name).is_file() for rid in ids), len(ids)


def read_status(config: dict, timings_path: str | Path, now: float | None = None) -> Status:
    """Every run of `config`'s plan, read from <results>/runs/<run id>/."""
    plan = expand(config)
    results = Path(config["results"])
    folder, now = results / "runs", time.time() if now is None else now
    timings = load_timings(timings_path)
    runs, spent, budgets = {}, Counter(), Counter()
    for rid, run in plan.runs.items():
        progress = read_progress(folder / rid, rid, run.config.optim.epochs, now)
        runs[rid] = progress
        share = gpu_share(timings, run.config.arch)
        done = progress.state == DONE
        planned = run_seconds(run.config, timings) * share
        budgets["all"] += planned
        budgets["done"] += planned if done else 0.0
        spent["done" if done else "other"] += progress.wall_seconds * share
    measured = {"hessian": _measured(folder, plan.hessian_ids, "hessian.json"),
                "variance": _measured(folder, plan.variance_ids, "variance.json")}
    return Status(plan, results, runs, measured, spent["done"], spent["other"], budgets["done"], budgets["all"])


def _counts(runs: list[Progress]) -> Counter:
    return Counter(p.state for p in runs)


def _row(label: str, counts: Counter, width: int) -> str:
    return f"  {label:<{width}} " + " ".join(f"{counts.get(s, 0):>7d}" for s in STATES)


def format_status(status: Status) -> str:
    """The whole report as lines of text."""
    total = _counts(list(status.runs.values()))
    lines = [f"config {status.plan.name}: {len(status.runs)} runs in {status.results}/runs — "
             + ", ".join(f"{total.get(s, 0)} {s}" for s in STATES)]
    sections = status.sections()
    width = max(len(label) for cells in sections.values() for label in cells) if status.runs else 10
    for grid, cells in sections.items():
        ids = list(dict.fromkeys(rid for rids in cells.values() for rid in rids))
        counts = _counts([status.runs[rid] for rid in ids])
        lines += ["", f"{grid} ({len(cells)} cell{'s' * (len(cells) != 1)}, {len(ids)} run{'s' * (len(ids) != 1)}: "
                      f"{counts.get(DONE, 0)} done)",
                  f"  {'cell':<{width}} " + " ".join(f"{s:>7s}" for s in STATES)]
        lines += [_row(label, _counts([status.runs[r] for r in rids]), width) for label, rids in cells.items()]
    active = [p for p in status.runs.values() if p.state in (RUNNING, STOPPED, FAILED)]
    for state in (RUNNING, STOPPED, FAILED):
        mine = [p for p in active if p.state == state]
        if mine:
            lines += ["", f"{state} ({len(mine)}):"] + [f"  {p.run_id}: {p.describe()}" for p in mine]
    lines += ["", "measurements: " + ", ".join(f"{name} {done}/{planned}" for name, (done, planned)
                                                  in status.measured.items())]
    lines.append(gpu_hours_line(status))
    return "\n".join(lines)


def gpu_hours_line(status: Status) -> str:
    """What training has cost so far against what the budget (`fpq budget`) gave it, in GPU-hours, or
    device-hours where a done run ran on a CPU (the budget is still GPU time); a part of 0.00 is left out."""
    done = sum(p.state == DONE for p in status.runs.values())
    devices = sorted({p.device for p in status.runs.values() if p.device})
    unit = "GPU-hours" if set(devices) <= {"cuda"} else f"device-hours (done runs on {' and '.join(devices)})"
    hours = lambda s: f"{s / 3600:.2f}"  # noqa: E731
    shown = lambda s: hours(s) != "0.00"  # noqa: E731
    parts = [f"the {done} done runs {hours(status.spent_done_s)}"
             + (f" (budgeted {hours(status.done_budget_s)})" if shown(status.done_budget_s) else "")]
    if shown(status.spent_other_s):
        parts.append(f"the others {hours(status.spent_other_s)} so far")
    line = f"{unit} of training: {hours(status.spent_done_s + status.spent_other_s)} spent — " + ", ".join(parts)
    left = status.budget_s - status.done_budget_s
    if shown(status.budget_s):
        line += f"; the plan's training budget {hours(status.budget_s)}"
        line += f", {hours(left)} of it for the runs not done" if shown(left) else ""
    return line
