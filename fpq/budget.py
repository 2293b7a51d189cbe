"""How many jobs a workflow config makes and how many GPU-hours they cost, before launching."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from fpq.config import RunConfig
from fpq.grid import expand, final_measurements
from fpq.methods import METHODS

FULL_TRAIN_SET = 50_000
HESSIAN_STEP_FACTOR = 3.0  # one Hessian-vector product costs about three training steps


def load_timings(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _train_images(cfg: RunConfig) -> int:
    return cfg.data.train_subset or FULL_TRAIN_SET


def run_seconds(cfg: RunConfig, timings: dict) -> float:
    """Estimated wall seconds of one training run (training epochs + Hessian trajectory)."""
    row = timings["archs"][cfg.arch]
    spec = METHODS[cfg.method]
    kind = "fp" if spec.quantizer is None else ("qat_teacher" if spec.uses_teacher_forward else "qat")
    per_epoch = row[kind] * (2.0 if spec.sam else 1.0) * _train_images(cfg) / FULL_TRAIN_SET
    seconds = per_epoch * cfg.optim.epochs
    if spec.quantizer is not None and cfg.hessian.every:
        points = cfg.optim.epochs // cfg.hessian.every + 2
        step = row["qat"] / (FULL_TRAIN_SET / 256) * cfg.hessian.batch_size / 256
        seconds += points * cfg.hessian.probes * cfg.hessian.batches * HESSIAN_STEP_FACTOR * step
    return seconds


def measurement_seconds(cfg: RunConfig, timings: dict, probes: int, batches: int, batch_size: int) -> float:
    step = timings["archs"][cfg.arch]["qat"] / (FULL_TRAIN_SET / 256) * batch_size / 256
    return probes * batches * HESSIAN_STEP_FACTOR * step


def budget_report(config: dict, timings_path: str | Path) -> str:
    timings = load_timings(timings_path)
    runs = expand(config)
    hessian_ids, variance_ids = final_measurements(config, runs)
    jobs = Counter("train_teacher" if r.teacher_id is None else "train_qat" for r in runs.values())
    jobs["measure_hessian"], jobs["probe_variance"] = len(hessian_ids), len(variance_ids)
    jobs["fetch_data"] = len({(r.config.data.root, r.config.data.dataset) for r in runs.values()
                              if r.config.data.source == "torchvision"})
    jobs["build_tables"] = jobs["plot_figures"] = 1
    h = config["hessian"]
    seconds = Counter()
    for rid, run in runs.items():
        seconds["train_teacher" if run.teacher_id is None else "train_qat"] += run_seconds(run.config, timings)
    for rid in hessian_ids:
        seconds["measure_hessian"] += measurement_seconds(runs[rid].config, timings, h["final_probes"],
                                                          h["final_batches"], h["batch_size"])
    estimated = sorted({r.config.arch for r in runs.values() if timings["archs"][r.config.arch].get("estimated")})
    lines = [f"jobs: {sum(jobs.values())}  (timings: {timings['card']})"]
    for rule in ("fetch_data", "train_teacher", "train_qat", "measure_hessian", "probe_variance", "build_tables",
                 "plot_figures"):
        lines.append(f"  {rule:16s} {jobs[rule]:5d} jobs  {seconds[rule] / 3600:8.1f} GPU-hours")
    lines.append(f"total: {sum(seconds.values()) / 3600:.1f} GPU-hours on one card "
                 f"({sum(seconds.values()) / 3600 / 4:.1f} h wall on 4 GPUs if perfectly packed)")
    if estimated:
        lines.append(f"note: seconds/epoch of {', '.join(estimated)} are estimates, not measurements")
    return "\n".join(lines)
