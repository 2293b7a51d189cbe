"""The order a config's jobs start in, when more are ready than the GPUs take: Snakemake priorities.

A campaign that is cut short (a time box, a lost node, a job limit) should leave whole paired
designs, not 6 seeds of one method and 1 of the other. So jobs start in this order, seed by seed
in the config's `seeds` order:

1. the teachers (every QAT run waits for one);
2. seed by seed: every QAT run of the first seed, then of the second, ... (LSQ and FPQ of a seed
   are trained before either method's next seed, so the paired FPQ - LSQ test has as many seeds as
   possible at any moment), and each finished student's measurements (final Hessian, output
   variance) before any run of a later seed: a seed a time box lets finish is complete, measured
   too, so a sitting's block (fpq.plan.blocks) holds whole seeds.

Within a seed, the dearer runs first (more epochs of the student's loss terms: FPQ before LSQ),
which packs the GPUs better at the end of a wave. A priority only breaks ties among jobs whose
inputs exist: the DAG's order always holds.
"""
from __future__ import annotations

from fpq.method.registry import METHODS
from fpq.plan.grid import Plan

STAGES = ("teacher", "qat", "measure")  # highest first where one number serves a whole rule
_STAGE_SPAN = 1_000_000  # room for seeds x methods below one stage's base


def _method_weight(method: str) -> int:
    """Loss terms a step of this method adds to the quantized forward/backward (SAM: a second pass)."""
    return METHODS[method].cost  # each piece's `cost` (fpq.method.pieces)


def stage_priority(stage: str) -> int:
    """The priority of every job of `stage` where a Snakemake takes only one number per rule."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    return (len(STAGES) - STAGES.index(stage)) * _STAGE_SPAN


def job_priority(plan: Plan, run_id: str, stage: str, seeds: list[int]) -> int:
    """Snakemake priority of `run_id`'s job of `stage` (one of STAGES); higher starts first. A
    measurement ranks with its seed's QAT runs, above them (it is ready only once its run is done)."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    cell = plan.runs[run_id].cell
    rank = seeds.index(cell.seed) if cell.seed in seeds else len(seeds)
    base = stage_priority("teacher") if stage == "teacher" else stage_priority("qat") + 50 * (stage == "measure")
    return base - rank * 100 + min(_method_weight(cell.method), 49)
