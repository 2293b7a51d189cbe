"""Where a budget's GPU-hours come from: the total by architecture and stage, each row's share and
the source of its seconds per epoch (measured on which GPU and torch, through which path, or an
estimate), so a reader sees how much of the total rests on measurements of the path the grid runs.

Priced with `fpq.plan.budget`'s own `run_gpu_seconds`, so the rows add up to
`budget_report`'s total (a test checks it).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fpq.plan.budget import final_hessian, load_timings, run_gpu_seconds, timing_row
from fpq.plan.grid import expand

STAGES = ("teacher", "QAT", "Hessian")  # train_teacher, train_qat, measure_hessian (probe_variance is unpriced)


@dataclass(frozen=True)
class Row:
    arch: str
    stage: str
    jobs: int
    seconds: float
    source: str  # "measured: <card, path, torch>" or "estimated: <why>"


def source_of(row: dict) -> str:
    """A timings row's source, said as measured or estimated.

    >>> source_of({"source": "H100 (plain PyTorch loop, fp32 eager)", "estimated": True})
    'estimated: H100 (plain PyTorch loop, fp32 eager)'
    """
    return f"{'estimated' if row.get('estimated') else 'measured'}: {row.get('source', 'unknown')}"


def breakdown(config: dict, timings: dict) -> list[Row]:
    """GPU-seconds by (arch, stage), in the plan's order of architectures."""
    plan = expand(config)
    final = final_hessian(config)
    jobs: dict[tuple, int] = defaultdict(int)
    seconds: dict[tuple, float] = defaultdict(float)
    for rid, run in plan.runs.items():
        key = (run.config.arch, "teacher" if run.teacher_id is None else "QAT")
        train, hessian = run_gpu_seconds(plan, rid, timings, final)
        jobs[key] += 1
        seconds[key] += train
        if rid in plan.hessian_ids:
            jobs[(run.config.arch, "Hessian")] += 1
            seconds[(run.config.arch, "Hessian")] += hessian
    archs = list(dict.fromkeys(arch for arch, _ in jobs))
    return [Row(arch, stage, jobs[(arch, stage)], seconds[(arch, stage)], source_of(timing_row(timings, arch)))
            for arch in archs for stage in STAGES if jobs[(arch, stage)]]


def breakdown_report(config: dict, timings_path: str | Path) -> str:
    rows = breakdown(config, load_timings(timings_path))
    total = sum(r.seconds for r in rows) or 1.0
    sources = list(dict.fromkeys(r.source for r in rows))
    mark = {s: f"[{i}]" for i, s in enumerate(sources, 1)}
    lines = ["", "by architecture and stage:", f"  {'arch':<12} {'stage':<8} {'jobs':>5} {'GPU-hours':>10} {'share':>6}  source"]
    for arch in dict.fromkeys(r.arch for r in rows):
        mine = [r for r in rows if r.arch == arch]
        for r in mine:
            lines.append(f"  {arch:<12} {r.stage:<8} {r.jobs:5d} {r.seconds / 3600:10.1f} {r.seconds / total:6.1%}"
                         f"  {mark[r.source]}")
        subtotal = sum(r.seconds for r in mine)
        lines.append(f"  {arch:<12} {'all':<8} {sum(r.jobs for r in mine):5d} {subtotal / 3600:10.1f} "
                     f"{subtotal / total:6.1%}")
    lines.append("sources of the seconds per epoch (config/epoch_seconds.yaml):")
    lines += [f"  {mark[s]} {s}" for s in sources]
    return "\n".join(lines)
