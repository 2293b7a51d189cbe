"""Write config/epoch_seconds.yaml (used by `fpq budget` and the SLURM runtimes) from a benchmark.

    python bench/bench_step.py --batch 256 --json bench.json          # on your card
    python bench/write_timings.py bench.json                          # fpq's main path
    python bench/write_timings.py bench.json --path compile=false     # or a --also variant
    python bench/write_timings.py --summary summary.json               # round 3: gpu_harness.sh + gpu_report.py

Architectures the benchmark did not time keep their previous rows; so does an arch whose FP, LSQ
or FPQ row of the summary is not a number ("over N s", "not run"): no row is ever guessed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from fpq.io import write_text
from fpq.plan.budget import concurrency_from_bench, load_timings, timings_from_bench, timings_from_summary

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", nargs="?", help="a bench_step.py --json file")
    p.add_argument("--summary", help="a gpu_report.py --summary file (round 3), instead of a bench_step file")
    p.add_argument("--path", default="fpq", help="which timed path: fpq (main runtime) or a --also label")
    p.add_argument("--concurrency", help="a bench/concurrency.py --json file: jobs per GPU that pay, per model")
    p.add_argument("--out", default=str(REPO / "config" / "epoch_seconds.yaml"))
    args = p.parse_args(argv)
    out = Path(args.out)
    previous = load_timings(out) if out.exists() else None
    if bool(args.bench) == bool(args.summary):
        p.error("give a bench_step.py file or --summary, one of them")
    if args.summary:
        timings, notes = timings_from_summary(json.loads(Path(args.summary).read_text()), previous)
        for note in notes:
            print(f"note: {note}")
    else:
        timings = timings_from_bench(json.loads(Path(args.bench).read_text()), previous, args.path)
    if args.concurrency:
        timings["concurrency"] = concurrency_from_bench(json.loads(Path(args.concurrency).read_text()), previous)
    header = (f"# Seconds per epoch of 50,000 CIFAR images, used by `fpq budget` and the SLURM\n"
              f"# runtimes. Written by bench/write_timings.py from {Path(args.bench or args.summary).name} on "
              f"{time.strftime('%Y-%m-%d')};\n# rows marked `estimated: true` were not measured.\n")
    write_text(out, header + yaml.safe_dump(timings, sort_keys=False, width=120))
    print(f"wrote {out}: {timings['card']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
