"""Does a speed path change results beyond seed noise? Trains the same cells both ways.

Default: the fused LSQ quantizer (runtime.fused_quant, on by default) against the reference op
chain, LSQ W2A4 on ResNet-20 from one short-trained teacher, on the real mini CIFAR-10 subset,
over several seeds; prints mean ± std of each and the verdict on the per-seed (paired) difference
with its 95% CI and the smallest difference these seeds could detect.
`--key bf16,teacher_bf16 --method fpq` (or channels_last, compile) checks those paths instead;
they run on CPU too (slowly), and are meant for CUDA.

    python bench/policy_check.py --npz ../shared/data/cifar10-mini.npz
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from fpq.config import load_config
from fpq.report.results import stat_of
from fpq.report.stats import compare_seeds, verdict_text
from fpq.run.train import run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--npz", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10-mini.npz"))
    p.add_argument("--key", default="fused_quant", help="runtime key(s) compared, all true vs all false; "
                   "comma-separated to switch several together, e.g. bf16,teacher_bf16")
    p.add_argument("--method", default="lsq")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train", type=int, default=2000, help="train images (class-balanced subset)")
    p.add_argument("--teacher-epochs", type=int, default=6)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--json")
    args = p.parse_args(argv)
    data = {"source": "npz", "path": args.npz, "train_subset": args.train}
    runtime = {"device": args.device, "progress": False}
    keys = [k.strip() for k in args.key.split(",") if k.strip()]
    work = Path(tempfile.mkdtemp(prefix="fpq-policy-"))
    run(load_config({"arch": "resnet20", "method": "fp", "data": data, "runtime": runtime,
                     "optim": {"epochs": args.teacher_epochs, "lr": 0.1, "batch_size": 128}}), work / "teacher")
    accs: dict[bool, list[float]] = {True: [], False: []}
    for seed in range(args.seeds):
        for value in (True, False):
            cfg = load_config({"arch": "resnet20", "method": args.method, "seed": seed, "data": data,
                               "teacher": str(work / "teacher" / "model.pt"),
                               "optim": {"epochs": args.epochs, "lr": 0.01, "batch_size": 128},
                               "quant": {"w_bits": 2, "a_bits": 4},
                               "runtime": {**runtime, **{key: value for key in keys}}})
            accs[value].append(run(cfg, work / f"{value}_{seed}")["final"]["top1"])
            print(f"seed {seed} {args.key}={value}: top-1 {accs[value][-1]:.2f}", flush=True)
    on, off = stat_of(accs[True]), stat_of(accs[False])
    c = compare_seeds(pd.Series(accs[True]), pd.Series(accs[False]))  # seeds pair: same teacher, data order
    print(f"\n{args.key}=true : {on.mean:.2f} ± {on.std:.2f} (n={on.n})")
    print(f"{args.key}=false: {off.mean:.2f} ± {off.std:.2f} (n={off.n})")
    print(f"difference {c.gain:+.2f}, 95% CI [{c.low:+.2f}, {c.high:+.2f}], {c.test} p = {c.p_value:.2g}; "
          f"this design detects >= {c.mde:.2f} points: {verdict_text(c)}")
    diff, p_value = c.gain, c.p_value
    if args.json:
        Path(args.json).write_text(json.dumps({"key": args.key, "on": accs[True], "off": accs[False],
                                               "diff": diff, "p_value": p_value}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
