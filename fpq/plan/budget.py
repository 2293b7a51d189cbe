"""How many jobs a workflow config makes and how many GPU-hours they cost, before launching."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from fpq.config import FinalHessianConfig, RunConfig
from fpq.method.registry import METHODS
from fpq.plan.grid import Plan, expand

FULL_TRAIN_SET = 50_000
HESSIAN_STEP_FACTOR = 3.0  # one Hessian-vector product costs about three training steps


TIMING_KINDS = {"fp": "fp", "qat": "lsq", "qat_teacher": "fpq"}  # budget column <- benchmarked method


def load_timings(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


SUMMARY_EXTRAS = ("sharing", "path")  # summary.json keys that are not an arch


def timings_from_summary(summary: dict, previous: dict | None = None) -> tuple[dict, list[str]]:
    """The epoch_seconds table from bench/gpu_report.py's summary.json: every arch whose FP, LSQ
    and FPQ were all measured gets a measured row (no `estimated`; with its Hessian-trajectory point
    where measured), the others keep their previous row; jobs per GPU from the sharing rows.
    Returns the table and one note per arch kept."""
    archs, notes, card = _kept_rows(previous), [], None
    for arch, entry in summary.items():
        if arch in SUMMARY_EXTRAS:
            continue
        values = {kind: entry.get(path) for kind, path in TIMING_KINDS.items()}
        bad = {k: v for k, v in values.items() if not isinstance(v, (int, float))}
        if bad:
            why = ", ".join(f"{TIMING_KINDS[k]} {v if v is not None else 'absent'}" for k, v in bad.items())
            notes.append(f"{arch}: kept its previous row ({why})")
            continue
        keys = ", ".join(f"{k}={v}" for k, v in (entry.get("runtime") or {}).items() if k not in ("device", "threads"))
        source = (f"{entry.get('device')}, fpq qat path [{entry.get('variant')}] ({keys}), batch {entry.get('batch')}, "
                  f"torch {entry.get('torch')}")
        archs[arch] = {**{k: round(float(v), 3) for k, v in values.items()}, "source": source}
        point = entry.get("pieces", {}).get("hessian")
        if isinstance(point, (int, float)):
            archs[arch]["hessian_point"] = round(float(point), 3)
        card = card or source
    timings = _timings(card or (previous or {}).get("card", "unknown"), archs, previous)
    if summary.get("sharing"):
        timings["concurrency"] = concurrency_from_summary(summary["sharing"], previous)
    return timings, notes


def _kept_rows(previous: dict | None) -> dict:
    """The previous table's rows, each naming its source (the card it was measured on)."""
    previous = previous or {}
    return {arch: {"source": previous.get("card", "unknown"), **row} for arch, row in previous.get("archs", {}).items()}


def _timings(card: str, archs: dict, previous: dict | None) -> dict:
    out = {"card": card, "archs": archs}
    if (previous or {}).get("concurrency"):
        out["concurrency"] = previous["concurrency"]
    return out


def concurrency_from_summary(sharing: dict, previous: dict | None = None) -> dict:
    """The `concurrency` table of epoch_seconds.yaml from summary.json's measured sharing rows: per
    model, the jobs per GPU (and whether under MPS) with the highest throughput and its speedup
    over one job; a model whose sharing does not pay by more than 5% (noise) gets no row."""
    table = dict((previous or {}).get("concurrency", {}))
    for model, rows in sorted(sharing.items()):
        table.pop(model, None)  # measured now: the old row goes, whatever the new one says
        best = max(rows, key=lambda r: r["speedup"])
        if best["jobs"] > 1 and best["speedup"] > 1.05:
            table[model] = {"jobs": best["jobs"], "speedup": round(best["speedup"], 3), "mps": bool(best.get("mps"))}
    return table


def gpu_share(timings: dict, arch: str) -> float:
    """GPU time of one job of this arch per second it runs: 1/speedup when k jobs share a GPU."""
    row = timings.get("concurrency", {}).get(arch)
    return 1.0 / row["speedup"] if row else 1.0


def timing_row(timings: dict, arch: str) -> dict:
    """The seconds/epoch row of an arch; for an arch without one (a model added since the table was
    measured), the dearest measured row, marked as an estimate: a budget never stops on a new model."""
    rows = timings["archs"]
    if arch in rows:
        return rows[arch]
    dearest = max(rows, key=lambda a: rows[a]["qat_teacher"])
    return {**rows[dearest], "estimated": True, "source": f"no row; {dearest}'s (the dearest measured) as an estimate"}


def _train_images(cfg: RunConfig) -> int:
    return cfg.data.train_subset or FULL_TRAIN_SET


def run_seconds(cfg: RunConfig, timings: dict) -> float:
    """Estimated wall seconds of one training run (training epochs + Hessian trajectory)."""
    row = timing_row(timings, cfg.arch)
    spec = METHODS[cfg.method]
    kind = "fp" if spec.quantizer is None else ("qat_teacher" if spec.uses_teacher_forward else "qat")
    per_epoch = row[kind] * spec.passes * _train_images(cfg) / FULL_TRAIN_SET
    seconds = per_epoch * cfg.optim.epochs
    if spec.quantizer is not None and cfg.hessian.every:
        points = cfg.optim.epochs // cfg.hessian.every + 2
        seconds += points * hessian_point_seconds(row, cfg.hessian.probes, cfg.hessian.batches, cfg.hessian.batch_size)
    return seconds


HESSIAN_POINT_PROBES = 16  # bench_path.py's `hessian` row: one point of 16 probes on one batch of 256


def hessian_point_seconds(row: dict, probes: int, batches: int, batch_size: int) -> float:
    """Seconds of one Hessian trace of `probes` x `batches`: from the measured point where the row
    has one, else HESSIAN_STEP_FACTOR training steps per probe."""
    if "hessian_point" in row:
        return row["hessian_point"] * probes / HESSIAN_POINT_PROBES * batches * batch_size / 256
    step = row["qat"] / (FULL_TRAIN_SET / 256) * batch_size / 256
    return probes * batches * HESSIAN_STEP_FACTOR * step


def measurement_seconds(cfg: RunConfig, timings: dict, probes: int, batches: int, batch_size: int) -> float:
    return hessian_point_seconds(timing_row(timings, cfg.arch), probes, batches, batch_size)


def final_hessian(config: dict) -> FinalHessianConfig:
    """The final Hessian measurement a workflow config asks for (its `hessian:` final_* keys)."""
    h = config["hessian"]
    return FinalHessianConfig(h["final_probes"], h["final_batches"], h["batch_size"], h["seed"], h["eigen_iters"])


def run_gpu_seconds(plan: Plan, run_id: str, timings: dict, final: FinalHessianConfig) -> tuple[float, float]:
    """(training, final Hessian) GPU seconds of one planned run, each its arch's GPU share of the wall
    seconds; the Hessian's 0 where the plan measures none for the run."""
    cfg = plan.runs[run_id].config
    share = gpu_share(timings, cfg.arch)
    hessian = (measurement_seconds(cfg, timings, final.probes, final.batches, final.batch_size)
               if run_id in plan.hessian_ids else 0.0)
    return run_seconds(cfg, timings) * share, hessian * share


RULES = ("fetch_data", "train_teacher", "train_qat", "measure_hessian", "probe_variance", "index_runs",
         "build_tables", "plot_figures", "all")  # the workflow's rules; `all` is the target, one job of no work


def job_counts(config: dict, plan: Plan | None = None) -> Counter:
    """Jobs per rule, as `snakemake -n` counts them for this config with no result made yet (tested
    equal); `plan`, the config's expanded plan where the caller has it already."""
    plan = plan or expand(config)
    runs = plan.runs
    jobs = Counter("train_teacher" if r.teacher_id is None else "train_qat" for r in runs.values())
    jobs["measure_hessian"], jobs["probe_variance"] = len(plan.hessian_ids), len(plan.variance_ids)
    jobs["fetch_data"] = len({(r.config.data.root, r.config.data.dataset) for r in runs.values()
                              if r.config.data.source == "torchvision"})
    jobs["index_runs"] = jobs["build_tables"] = jobs["plot_figures"] = jobs["all"] = 1
    return jobs


def installed_torch() -> str:
    """The torch installed here, read without importing it (a budget is torch-free)."""
    from importlib import metadata

    try:
        return f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        return "no torch"


DEFAULT_GPUS = 4  # `fpq budget --gpus`'s default: a common GPU box


def budget_report(config: dict, timings_path: str | Path, gpus: int = DEFAULT_GPUS) -> str:
    """Jobs and GPU-hours per rule; `gpus` only divides the total into the wall-time line (`--gpus`)."""
    timings = load_timings(timings_path)
    plan = expand(config)
    runs = plan.runs
    jobs = job_counts(config, plan)
    final = final_hessian(config)
    seconds = Counter()
    for rid, run in runs.items():
        train, hessian = run_gpu_seconds(plan, rid, timings, final)
        seconds["train_teacher" if run.teacher_id is None else "train_qat"] += train
        seconds["measure_hessian"] += hessian
    used = {r.config.arch: timing_row(timings, r.config.arch) for r in runs.values()}
    estimated = sorted(arch for arch, row in used.items() if row.get("estimated"))
    lines = [f"jobs: {sum(jobs.values())}  (as `snakemake -n` counts them, the target rule `all` included)",
             f"timings: seconds per epoch measured on {timings['card']} (the torch they were measured with; "
             f"installed here: {installed_torch()})"]
    other = sorted(arch for arch, row in used.items()
                   if row.get("source", timings["card"]) != timings["card"] and not row.get("estimated"))
    if other:
        lines.append("  timed elsewhere: " + "; ".join(f"{a}: {used[a]['source']}" for a in other))
    for rule in RULES:
        work = "(the target: no work)" if rule == "all" else f"{seconds[rule] / 3600:8.1f} GPU-hours"
        lines.append(f"  {rule:16s} {jobs[rule]:5d} jobs  {work}")
    total = sum(seconds.values()) / 3600
    said = f"--gpus {gpus}, the default" if gpus == DEFAULT_GPUS else f"--gpus {gpus}"
    lines.append(f"total: {total:.1f} GPU-hours on one card ({total / gpus:.1f} h wall on {gpus} GPUs ({said}) if "
                 f"perfectly packed)")
    shared = {a: r for a, r in timings.get("concurrency", {}).items() if a in used}
    for arch, row in shared.items():
        mps = ", FPQ_MPS=1" if row.get("mps") else ""
        lines.append(f"  {arch}: {row['jobs']} jobs per GPU (FPQ_JOBS_PER_GPU={row['jobs']}{mps}, --resources "
                     f"gpu=<GPUs x {row['jobs']}>) give {row['speedup']:.2f}x the throughput (measured); counted above")
    if estimated:
        lines.append("note: estimates, not measurements: the seconds/epoch of "
                     + "; ".join(f"{a} ({used[a]['source']})" for a in estimated))
    return "\n".join(lines)
