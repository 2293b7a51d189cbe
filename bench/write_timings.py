"""Write config/epoch_seconds.yaml (used by `fpq budget` and the SLURM runtimes) from a harness run.

    bash bench/gpu_harness.sh                                    # on your card (OUT=folder)
    python bench/gpu_report.py FOLDER --summary FOLDER/summary.json
    python bench/write_timings.py --summary FOLDER/summary.json

Architectures the harness did not time keep their previous rows; so does an arch whose FP, LSQ
or FPQ row of the summary is not a number ("over N s", "not run"): no row is ever guessed. Jobs
per GPU come from the summary's measured sharing rows only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from fpq.io import write_text
from fpq.plan.budget import load_timings, timings_from_summary

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--summary", required=True, help="a gpu_report.py --summary file")
    p.add_argument("--out", default=str(REPO / "config" / "epoch_seconds.yaml"))
    args = p.parse_args(argv)
    out = Path(args.out)
    previous = load_timings(out) if out.exists() else None
    timings, notes = timings_from_summary(json.loads(Path(args.summary).read_text()), previous)
    for note in notes:
        print(f"note: {note}")
    header = (f"# Seconds per epoch of 50,000 CIFAR images, used by `fpq budget` and the SLURM\n"
              f"# runtimes. Written by bench/write_timings.py from {Path(args.summary).name} on "
              f"{time.strftime('%Y-%m-%d')};\n# rows marked `estimated: true` were not measured.\n")
    write_text(out, header + yaml.safe_dump(timings, sort_keys=False, width=120))
    print(f"wrote {out}: {timings['card']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
