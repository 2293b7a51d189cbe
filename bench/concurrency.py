"""Throughput of k training jobs sharing one GPU (the slot pool's FPQ_JOBS_PER_GPU), side by side.

For each k, k processes each build fpq's training step (bench_step.fpq_step_fn, same runtime keys
as the configs' CUDA keys unless --runtime changes them), warm up (compile), wait for each other,
then run steps for --seconds. Reported: the images per second of all k together and the speedup
over one job. A small model (ResNet-20, the MobileNets) leaves most of an H100 idle, so k > 1
can pay; `write_timings.py --concurrency` feeds the best k to `fpq budget`.

    python bench/concurrency.py --model resnet20 --method lsq --jobs 1,2,4 --json c.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_step  # noqa: E402


def _worker(model: str, method: str, batch: int, runtime: dict, seconds: float, warmup: int, barrier, results):
    import torch

    from fpq.run.build import resolve_device

    device = resolve_device("auto")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    step = bench_step.fpq_step_fn(model, method, 10, device, x, y, runtime)
    for _ in range(warmup):
        step()
    bench_step.sync(device)
    barrier.wait()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    bench_step.sync(device)
    results.put(steps * batch / (time.perf_counter() - t0))


def measure(k: int, args, runtime: dict) -> float:
    ctx = mp.get_context("spawn")  # a fresh CUDA context per job, as separate Snakemake jobs have
    barrier, results = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args.model, args.method, args.batch, runtime, args.seconds,
                                               args.warmup, barrier, results)) for _ in range(k)]
    for p in procs:
        p.start()
    rates = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--method", default="lsq")
    p.add_argument("--jobs", default="1,2,4")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runtime", default="", help="KEY=VAL,... over the fast keys (e.g. compile=false)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    runtime = {**bench_step.FAST, **(bench_step.parse_also(args.runtime)[1] if args.runtime else {})}
    rows, base = [], None
    for k in (int(j) for j in args.jobs.split(",")):
        rate = measure(k, args, runtime)
        base = base or rate
        rows.append({"model": args.model, "method": args.method, "jobs": k, "images_per_s": rate,
                     "speedup": rate / base, "runtime": runtime, "batch": args.batch})
        print(f"{args.model} {args.method} jobs={k}: {rate:,.0f} img/s together ({rate / base:.2f}x one job)",
              flush=True)
        if args.json:  # after every k, so a time-boxed run keeps what it measured
            Path(args.json).write_text(json.dumps({"concurrency": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
