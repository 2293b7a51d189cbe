"""Per-epoch overhead of evaluation and of the Hessian-trace trajectory, from a real QAT run.

Trains a 1-epoch teacher and a QAT run on the mini CIFAR-10 subset with the trace measured after
every epoch (paper-config probes and batch), then reads the per-epoch timings that every
metrics.json records (epoch_time, eval_time, hessian_time) and scales them to a 50k-image epoch
and a trace every `--every` epochs.

    python bench/epoch_overhead.py --npz ../shared/data/cifar10-mini.npz
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from fpq.config import load_config
from fpq.run.train import run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--npz", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10-mini.npz"))
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--method", default="fpq")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--every", type=int, default=10, help="trace period to scale to (paper config: 10)")
    p.add_argument("--probes", type=int, default=16)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fpq-overhead-"))
    data = {"source": "npz", "path": args.npz}
    runtime = {"device": args.device, "progress": False}
    run(load_config({"arch": args.arch, "method": "fp", "data": data, "runtime": runtime,
                     "optim": {"epochs": 1, "lr": 0.1}}), work / "teacher")
    m = run(load_config({"arch": args.arch, "method": args.method, "data": data, "runtime": runtime,
                         "teacher": str(work / "teacher" / "model.pt"), "optim": {"epochs": args.epochs, "lr": 0.01},
                         "quant": {"w_bits": 2, "a_bits": 4},
                         "hessian": {"every": 1, "probes": args.probes, "batch_size": 256}}), work / "qat")
    rows = m["history"]
    train = statistics.median(r["epoch_time"] for r in rows)
    evaluation = statistics.median(r["eval_time"] for r in rows)
    hessian = statistics.median(r["hessian_time"] for r in rows)
    images, test_images = 5000, 1000
    scale = 50_000 / images
    train_50k, eval_10k = train * scale, evaluation * 10_000 / test_images
    print(f"{args.arch} {args.method} W2A4, {m['device']['name']}, per epoch of {images} images:")
    print(f"  train {train:.1f} s | eval on {test_images} test images {evaluation:.2f} s | "
          f"trace ({args.probes} probes x 256 images) {hessian:.1f} s")
    print(f"scaled to CIFAR (50k train, 10k test): train {train_50k:.0f} s/epoch, "
          f"eval {100 * eval_10k / train_50k:.1f}% of it, trace every {args.every} epochs "
          f"{100 * hessian / args.every / train_50k:.1f}% of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
