"""How many jobs a workflow config makes and how many GPU-hours they cost, before launching."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from fpq.config import FinalHessianConfig, RunConfig
from fpq.method.registry import METHODS
from fpq.plan.grid import expand

FULL_TRAIN_SET = 50_000
HESSIAN_STEP_FACTOR = 3.0  # one Hessian-vector product costs about three training steps


TIMING_KINDS = {"fp": "fp", "qat": "lsq", "qat_teacher": "fpq"}  # budget column <- benchmarked method


def load_timings(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def timings_from_bench(bench: dict, previous: dict | None = None, path: str = "fpq") -> dict:
    """The epoch_seconds table from a `bench/bench_step.py --json` result.

    Uses the rows of one timed path (fpq's main runtime by default; a `--also` label for a variant),
    fp <- FP, qat <- LSQ W2A4, qat_teacher <- FPQ W2A4 (teacher forward + CSD, the dearest teacher
    method). Architectures the benchmark did not time keep their previous rows.
    """
    rows = [r for r in bench["rows"] if r["path"] == path]
    if not rows:
        raise ValueError(f"no rows of path {path!r} in the benchmark (paths: "
                         f"{sorted({r['path'] for r in bench['rows']})})")
    by = {(r["model"], r["method"]): r for r in rows}
    runtime = rows[0].get("runtime") or bench.get("runtime") or {}
    keys = ", ".join(f"{k}={v}" for k, v in runtime.items() if k != "device") or "defaults"
    source = f"{bench['device']}, fpq path ({keys}), batch {bench['batch']}, torch {bench['torch']}"
    archs = _kept_rows(previous)
    for arch in sorted({r["model"] for r in rows}):
        missing = [m for m in TIMING_KINDS.values() if (arch, m) not in by]
        if missing:
            raise ValueError(f"{arch}: the benchmark lacks {missing}; run it with --methods fp,lsq,fpq")
        archs[arch] = {**{kind: round(by[(arch, m)]["s_per_epoch"], 3) for kind, m in TIMING_KINDS.items()},
                       "source": source}
    return _timings(source, archs, previous)


def timings_from_summary(summary: dict, previous: dict | None = None) -> tuple[dict, list[str]]:
    """The epoch_seconds table from bench/gpu_report.py's summary.json (round 3): every arch whose
    FP, LSQ and FPQ were all measured gets a measured row (no `estimated`); the others keep their
    previous row. Returns the table and one note per arch kept."""
    archs, notes, card = _kept_rows(previous), [], None
    for arch, entry in summary.items():
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
        card = card or source
    return _timings(card or (previous or {}).get("card", "unknown"), archs, previous), notes


def _kept_rows(previous: dict | None) -> dict:
    """The previous table's rows, each naming its source (the card it was measured on)."""
    previous = previous or {}
    return {arch: {"source": previous.get("card", "unknown"), **row} for arch, row in previous.get("archs", {}).items()}


def _timings(card: str, archs: dict, previous: dict | None) -> dict:
    out = {"card": card, "archs": archs}
    if (previous or {}).get("concurrency"):
        out["concurrency"] = previous["concurrency"]
    return out


def concurrency_from_bench(bench: dict, previous: dict | None = None) -> dict:
    """The `concurrency` table of epoch_seconds.yaml from `bench/concurrency.py --json`: per model,
    the number of jobs per GPU with the highest throughput and its speedup over one job."""
    table = dict((previous or {}).get("concurrency", {}))
    for model in sorted({r["model"] for r in bench["concurrency"]}):
        best = max((r for r in bench["concurrency"] if r["model"] == model), key=lambda r: r["speedup"])
        if best["jobs"] > 1 and best["speedup"] > 1.05:  # under 5% is noise, not worth a shared GPU
            table[model] = {"jobs": best["jobs"], "speedup": round(best["speedup"], 3)}
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
    per_epoch = row[kind] * (2.0 if spec.sam else 1.0) * _train_images(cfg) / FULL_TRAIN_SET
    seconds = per_epoch * cfg.optim.epochs
    if spec.quantizer is not None and cfg.hessian.every:
        points = cfg.optim.epochs // cfg.hessian.every + 2
        step = row["qat"] / (FULL_TRAIN_SET / 256) * cfg.hessian.batch_size / 256
        seconds += points * cfg.hessian.probes * cfg.hessian.batches * HESSIAN_STEP_FACTOR * step
    return seconds


def measurement_seconds(cfg: RunConfig, timings: dict, probes: int, batches: int, batch_size: int) -> float:
    step = timing_row(timings, cfg.arch)["qat"] / (FULL_TRAIN_SET / 256) * batch_size / 256
    return probes * batches * HESSIAN_STEP_FACTOR * step


def budget_report(config: dict, timings_path: str | Path, gpus: int = 4) -> str:
    timings = load_timings(timings_path)
    plan = expand(config)
    runs = plan.runs
    jobs = Counter("train_teacher" if r.teacher_id is None else "train_qat" for r in runs.values())
    jobs["measure_hessian"], jobs["probe_variance"] = len(plan.hessian_ids), len(plan.variance_ids)
    jobs["fetch_data"] = len({(r.config.data.root, r.config.data.dataset) for r in runs.values()
                              if r.config.data.source == "torchvision"})
    jobs["index_runs"] = jobs["build_tables"] = jobs["plot_figures"] = 1
    h = config["hessian"]
    final = FinalHessianConfig(h["final_probes"], h["final_batches"], h["batch_size"], h["seed"], h["eigen_iters"])
    seconds = Counter()
    for run in runs.values():
        share = gpu_share(timings, run.config.arch)
        seconds["train_teacher" if run.teacher_id is None else "train_qat"] += run_seconds(run.config, timings) * share
    for rid in plan.hessian_ids:
        seconds["measure_hessian"] += measurement_seconds(runs[rid].config, timings, final.probes, final.batches,
                                                          final.batch_size) * gpu_share(timings, runs[rid].config.arch)
    used = {r.config.arch: timing_row(timings, r.config.arch) for r in runs.values()}
    estimated = sorted(arch for arch, row in used.items() if row.get("estimated"))
    lines = [f"jobs: {sum(jobs.values())}  (timings: {timings['card']})"]
    other = sorted(arch for arch, row in used.items() if row.get("source", timings["card"]) != timings["card"])
    if other:
        lines.append("  timed elsewhere: " + "; ".join(f"{a}: {used[a]['source']}" for a in other))
    for rule in ("fetch_data", "train_teacher", "train_qat", "measure_hessian", "probe_variance", "index_runs",
                 "build_tables", "plot_figures"):
        lines.append(f"  {rule:16s} {jobs[rule]:5d} jobs  {seconds[rule] / 3600:8.1f} GPU-hours")
    total = sum(seconds.values()) / 3600
    lines.append(f"total: {total:.1f} GPU-hours on one card ({total / gpus:.1f} h wall on {gpus} GPUs if perfectly "
                 f"packed)")
    shared = {a: r for a, r in timings.get("concurrency", {}).items() if a in used}
    for arch, row in shared.items():
        lines.append(f"  {arch}: {row['jobs']} jobs per GPU (FPQ_JOBS_PER_GPU={row['jobs']}, --resources "
                     f"gpu=<GPUs x {row['jobs']}>) give {row['speedup']:.2f}x the throughput; counted above")
    if estimated:
        lines.append(f"note: seconds/epoch of {', '.join(estimated)} are estimates, not measurements")
    return "\n".join(lines)
