"""Time one path of one model through fpq's own training path, and append its row to a JSON file.

One process per path (bench/gpu_harness.sh gives each its own time box). The models, the loss and
the optimizer step are built by the functions `fpq qat` uses (fpq.plan.grid.run_config for the
RunConfig a workflow config gives the cell, fpq.run.train.build_student,
make_objective, make_optimizer, train_step), on batches of fpq's DeviceLoader (GPU augmentation
included); only the teacher's weights are random (their values do not change the cost).

Paths:
  fp, lsq, lsq+sfp, lsq+csd, kd, fpq  one whole training step of that method (W2A4)
  teacher                             FPQ's teacher forward alone (bf16, taps on, as in the step)
  csd / csd-reference                 CSD forward + backward alone on one step's conv maps, fpq's
                                      fast CSD (as the step runs it) / the instance_norm oracle
  sfp                                 SFP alone: the perturbation of every SFP layer, forward + backward
  hessian                             one Hessian-trajectory point (16 probes, one batch); its row's
                                      "s_per_epoch" is the seconds of one point (once per epoch)
  agree                               the CUDA-graph step against the eager one (bench/agreement.py)
  agree-triton                        the Triton kernels against the torch path (bench/agreement.py)
  --jobs K (a step path)              K processes sharing the GPU, timed together (GPU sharing)

Row: seconds per step (median of rounds), seconds per 50,000-image epoch (for a piece: the
seconds of that piece per epoch), build seconds (models, optimizer, compile and warm-up), peak
memory (CUDA). A row marked "building" is written as soon as the build ends, so a path cut off
while timing still shows its build; `--over N` and `--failed RC` write the row of a path that
ran out of its box or crashed (the harness calls them), so no path is left out.

    python bench/bench_path.py --arch resnet18 --path fpq --json out/session.json
    python bench/bench_path.py --arch resnet18 --path fpq --variant graph --runtime teacher_cuda_graph=true --json ...
    python bench/bench_path.py --arch resnet18 --path fpq --variant graph-triton --runtime cuda_graph=true,kernels=triton ...
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # build.py, agreement.py beside this file; spawned workers import this one
from build import build_step, setup  # noqa: E402  (bench/build.py, found through the line above)
EPOCH_IMAGES = 50_000
STEP_PATHS = ("fp", "lsq", "lsq+sfp", "lsq+csd", "kd", "fpq")
PIECES = {"teacher": "fpq", "csd": "fpq", "csd-reference": "fpq", "sfp": "fpq",  # piece -> method it is cut from
          "hessian": "fpq"}
HESSIAN_PROBES = 16  # one trajectory point of config/paper.yaml: 16 probes on one batch
# bench/agreement.py (--method picks another): the graph step against the eager one, and the Triton
# kernels against the torch path (LSQ+CSD: both kernels, and no SFP noise, which the two draw apart)
CHECKS = {"agree": "fpq", "agree-triton": "lsq+csd"}
PATHS = STEP_PATHS + tuple(PIECES) + tuple(CHECKS)


# ----------------------------------------------------------------------------- the JSON file
def key(row: dict) -> tuple:
    return row["arch"], row["path"], row.get("variant", "")


def append_row(json_path: str | Path, row: dict, meta: dict | None = None) -> None:
    """Add (or replace: same arch, path and variant) one row; the file is rewritten atomically, so
    a process killed mid-write leaves the previous rows intact."""
    from fpq.io import write_json

    path = Path(json_path)
    data = json.loads(path.read_text()) if path.exists() else {"session": meta or {}, "rows": []}
    data["rows"] = [r for r in data["rows"] if key(r) != key(row)] + [row]
    write_json(path, data)


def existing_row(json_path: str | Path, arch: str, path: str, variant: str) -> dict | None:
    p = Path(json_path)
    if not p.exists():
        return None
    return next((r for r in json.loads(p.read_text())["rows"] if key(r) == (arch, path, variant)), None)


def unfinished_row(args, status: str, text: str) -> dict:
    """The row of a path with no timing: over its box, failed, or never started; a build already
    recorded by the path itself is kept."""
    row = existing_row(args.json, args.arch, args.path, args.variant) or {}
    built = row.get("build_s") if row.get("status") == "building" else None
    return {"arch": args.arch, "path": args.path, "variant": args.variant, "status": status,
            "s_per_epoch": text, "step_s": None, "build_s": built if built is not None else text,
            "runtime_args": args.runtime or "", "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def csd_agreement(fn, leaves, t_maps, stats, eps) -> dict:
    """This CSD against the instance_norm oracle on the real (bf16 on CUDA) maps of one step: the
    relative difference of the value and of the gradient (the GPU half of the CSD equality)."""
    import torch

    from fpq.method.distill import csd_loss_reference

    results = []
    for f in (fn, csd_loss_reference):
        copies = [z.detach().clone().requires_grad_(True) for z in leaves]
        loss = f(copies, t_maps, stats, eps)
        grads = torch.autograd.grad(loss, copies)
        results.append((loss.detach().float(), torch.cat([g.float().flatten() for g in grads])))
    (v, g), (rv, rg) = results
    return {"value_rel": float((v - rv).abs() / rv.abs().clamp_min(1e-30)),
            "grad_rel_max": float((g - rg).abs().max() / rg.abs().max().clamp_min(1e-30)),
            "value": float(v), "reference": float(rv)}


def piece_fn(piece: str, objective, batches, checks: dict):
    """One piece of the FPQ step, on a batch of the loader and the maps of one real step; what it
    can check of its own correctness goes into `checks` (a row field)."""

    from fpq.method.distill import csd_loss, csd_loss_reference
    from fpq.method.objective import autocast_bf16
    from fpq.method.perturb import StochasticFeaturePerturbation

    x, y = next(batches)
    q = objective.quant
    if piece == "hessian":  # one Hessian-trajectory point (fpq.run.train.measure_trace's estimate)
        from fpq.measure.hessian import hutchinson_trace

        return lambda: hutchinson_trace(objective.student, [(x, y)], probes=HESSIAN_PROBES, seed=1234)
    if piece == "teacher":
        def run():
            objective.teacher_taps.start()
            try:
                return objective.teacher_forward(x)
            finally:
                objective.teacher_taps.stop()
        return run
    captured = []
    hooks = [m.register_forward_pre_hook(lambda m, a: captured.append((m, a[0].detach(), a[1].step_size().detach())))
             for m in objective.student.modules() if isinstance(m, StochasticFeaturePerturbation)]
    objective.student_taps.start()
    objective.teacher_taps.start()
    with autocast_bf16(x, objective.student_bf16):
        objective.student(x)
    objective.teacher_forward(x)
    objective.student_taps.stop()
    objective.teacher_taps.stop()
    for h in hooks:
        h.remove()
    s_maps = [z.detach() for z in objective.student_taps.outputs]
    t_maps = list(objective.teacher_taps.outputs)
    objective.student_taps.outputs.clear()
    objective.teacher_taps.outputs.clear()
    if piece in ("csd", "csd-reference"):
        fused = functools.partial(csd_loss, kernels=objective.kernels)  # the CSD term's own path, lambda aside
        fn = fused if piece == "csd" else csd_loss_reference
        leaves = [z.requires_grad_(True) for z in s_maps]
        checks["csd_vs_reference"] = csd_agreement(fn, leaves, t_maps, q.csd_stats, q.csd_eps)

        def run():
            for z in leaves:
                z.grad = None
            fn(leaves, t_maps, q.csd_stats, q.csd_eps).backward()
        return run
    if piece == "sfp":
        inputs = [(m, x_in.requires_grad_(True), s) for m, x_in, s in captured]

        def run():
            for m, x_in, s in inputs:
                x_in.grad = None
                m.perturb(x_in, s).sum().backward()
        return run
    raise SystemExit(f"unknown piece {piece!r}")


# ----------------------------------------------------------------------------- timing
def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def default_method(path: str) -> str:
    return PIECES.get(path) or CHECKS.get(path) or path


def measure(args) -> dict:
    import torch

    cfg, device, method, x_u8, y_u8 = setup(args, default_method(args.path))
    if args.path in CHECKS:
        import agreement

        return agreement.measure(args, cfg, device, x_u8, y_u8, lambda status, checks, build_s: {
            **_row_base(args, cfg, device, method), "status": status, "checks": checks, "s_per_epoch": None,
            "step_s": None, "build_s": build_s}, lambda row: append_row(args.json, row, _meta()))
    if args.jobs:
        return measure_shared(args, cfg, device, method)
    t0 = time.perf_counter()
    step, objective, batches, train_step = build_step(cfg, device, x_u8, y_u8)
    checks = {}
    fn = step if args.path in STEP_PATHS else piece_fn(args.path, objective, batches, checks)
    for _ in range(args.warmup):
        fn()
    sync(device)
    build_s = time.perf_counter() - t0
    base = {**_row_base(args, cfg, device, method), "build_s": round(build_s, 3), "kernels_in_force": objective.kernels}
    append_row(args.json, {**base, "status": "building", "s_per_epoch": None, "step_s": None}, _meta())
    print(f"  built {args.arch} {args.path} [{args.variant}] in {build_s:.1f}s", flush=True)
    times = []
    for _ in range(args.rounds):
        sync(device)
        t = time.perf_counter()
        for _ in range(args.steps):
            fn()
        sync(device)
        times.append((time.perf_counter() - t) / args.steps)
    step_s = statistics.median(times)
    per_epoch = step_s if args.path == "hessian" else step_s * EPOCH_IMAGES / args.batch  # one point per epoch
    row = {**base, "status": "ok", "step_s": step_s, "s_per_epoch": round(per_epoch, 4),
           "images_per_s": args.batch / step_s if args.path in STEP_PATHS else None, "rounds_s": times,
           "peak_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None}
    if train_step.graph is not None:
        row["graph"] = train_step.graph.report()
    if checks:
        row["checks"] = checks
    return row


def _row_base(args, cfg, device, method) -> dict:
    import torch

    return {"arch": args.arch, "path": args.path, "variant": args.variant, "method": method, "batch": args.batch,
            "runtime": {k: v for k, v in dataclasses.asdict(cfg.runtime).items() if k not in ("cuda", "progress")},
            "runtime_args": args.runtime or "", "device": _device_name(device), "torch": torch.__version__,
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def _shared_worker(argv: list[str], barrier, results) -> None:
    """One of k jobs on one GPU: build, warm up, wait for the others, then step for --seconds."""
    args = parser().parse_args(argv)
    cfg, device, _, x_u8, y_u8 = setup(args, default_method(args.path))
    step, *_ = build_step(cfg, device, x_u8, y_u8)
    for _ in range(args.warmup):
        step()
    sync(device)
    barrier.wait()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        step()
        steps += 1
    sync(device)
    results.put(steps * args.batch / (time.perf_counter() - t0))


def measure_shared(args, cfg, device, method) -> dict:
    """k separate processes (as k Snakemake jobs on one GPU slot pool), each its own CUDA context,
    timed together; the row's s/epoch is the GPU's seconds per 50k-image epoch of one job (total
    throughput), so it compares directly with the one-job row."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(args.jobs), ctx.Queue()
    argv = [a for a in sys.argv[1:]]
    procs = [ctx.Process(target=_shared_worker, args=(argv, barrier, results)) for _ in range(args.jobs)]
    for p in procs:
        p.start()
    rates = [results.get() for _ in procs]
    for p in procs:
        p.join()
    total = sum(rates)
    return {**_row_base(args, cfg, device, method), "status": "ok", "jobs": args.jobs,
            "mps": bool(os.environ.get("CUDA_MPS_PIPE_DIRECTORY")) and args.variant.endswith("mps"),
            "images_per_s": total, "per_job_images_per_s": rates, "step_s": None,
            "s_per_epoch": round(EPOCH_IMAGES / total, 4), "build_s": None}


def _device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def _meta() -> dict:
    return {"commit": os.environ.get("FPQ_GIT_COMMIT", ""), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True)
    p.add_argument("--path", required=True, choices=PATHS)
    p.add_argument("--variant", default="", help="label of the runtime variant (e.g. eager, config, graph)")
    p.add_argument("--runtime", default="", help="runtime keys laid over the workflow config's, KEY=VAL[,KEY=VAL]")
    p.add_argument("--workflow", default="config/paper.yaml", help="workflow config whose runtime the cell gets")
    p.add_argument("--json", required=True, help="the session's JSON file (rows are appended)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--over", type=int, help="write this path's row as over N s (it ran out of its box)")
    p.add_argument("--failed", type=int, help="write this path's row as failed with this exit status")
    p.add_argument("--skipped", action="store_true", help="write this path's row as not run (budget spent)")
    p.add_argument("--method", default="", help="the method of a step path's cell (default: the path's own)")
    p.add_argument("--jobs", type=int, default=0, help="k processes sharing the GPU, timed together (1: the baseline)")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds of each shared job (--jobs)")
    p.add_argument("--agree-steps", type=int, default=50, help="steps of the agree path's loss comparison")
    p.add_argument("--data", default="", help="agree path: a CIFAR-10 .npz for the one-epoch comparison")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.over is not None:
        row = unfinished_row(args, "over", f"over {args.over} s")
    elif args.failed is not None:
        row = unfinished_row(args, "failed", f"failed (exit {args.failed})")
    elif args.skipped:
        row = unfinished_row(args, "skipped", "not run (session budget spent)")
    else:
        row = measure(args)
    append_row(args.json, row, _meta())
    shown = f"{row['s_per_epoch']:.3f} s/epoch" if isinstance(row["s_per_epoch"], float) else row["s_per_epoch"]
    built = f"{row['build_s']:.1f}" if isinstance(row["build_s"], float) else row["build_s"]
    if row.get("checks"):
        shown = "checked"
    print(f"{args.arch:12s} {args.path:14s} {args.variant:8s} {shown:>20s}   build {built}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
