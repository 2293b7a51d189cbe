"""Write config/epoch_seconds.yaml (used by `fpq budget` and the SLURM runtimes) from a benchmark.

    python bench/bench_step.py --batch 256 --json bench.json          # on your card
    python bench/write_timings.py bench.json                          # fpq's main path
    python bench/write_timings.py bench.json --path compile=false     # or a --also variant

Architectures the benchmark did not time keep their previous rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from fpq.plan.budget import concurrency_from_bench, load_timings, timings_from_bench
from fpq.io import write_text

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", help="a bench_step.py --json file")
    p.add_argument("--path", default="fpq", help="which timed path: fpq (main runtime) or a --also label")
    p.add_argument("--concurrency", help="a bench/concurrency.py --json file: jobs per GPU that pay, per model")
    p.add_argument("--out", default=str(REPO / "config" / "epoch_seconds.yaml"))
    args = p.parse_args(argv)
    out = Path(args.out)
    previous = load_timings(out) if out.exists() else None
    timings = timings_from_bench(json.loads(Path(args.bench).read_text()), previous, args.path)
    if args.concurrency:
        timings["concurrency"] = concurrency_from_bench(json.loads(Path(args.concurrency).read_text()), previous)
    header = (f"# Seconds per epoch of 50,000 CIFAR images, used by `fpq budget` and the SLURM\n"
              f"# runtimes. Written by bench/write_timings.py from {Path(args.bench).name} on "
              f"{time.strftime('%Y-%m-%d')};\n# rows marked `estimated: true` were not measured.\n")
    write_text(out, header + yaml.safe_dump(timings, sort_keys=False, width=120))
    print(f"wrote {out}: {timings['card']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
