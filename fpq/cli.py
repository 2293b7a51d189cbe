"""The `fpq` command: train (pretrain / qat), hessian, variance, tables, figures, budget, runs."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fpq.config import ConfigError, load_config, with_overrides

EXIT_BAD_INPUT, EXIT_FAILED = 2, 1


def _run_config(args):
    """The RunConfig of a training/measurement command, validated before any work starts."""
    if args.config_json:
        data = json.loads(args.config_json)
    else:
        import yaml

        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    return load_config(with_overrides(data, args.set or []))


def cmd_train(args, stage: str | None) -> int:
    from fpq.gpu_slots import acquire_gpu_slot
    from fpq.train import record_failure, run

    cfg = _run_config(args)
    if stage == "pretrain" and cfg.is_qat or stage == "qat" and not cfg.is_qat:
        raise ConfigError(f"method: {cfg.method!r} is not a {stage} method")
    acquire_gpu_slot()
    try:
        metrics = run(cfg, args.out)
    except Exception as err:
        record_failure(args.out, cfg, err)
        raise
    print(f"{cfg.run_id or cfg.method}: final top-1 {metrics['final']['top1']:.2f}% "
          f"(best {metrics['best']['top1']:.2f}% at epoch {metrics['best']['epoch']})")
    return 0


def cmd_hessian(args) -> int:
    from fpq.gpu_slots import acquire_gpu_slot
    from fpq.measure import measure_hessian

    acquire_gpu_slot()
    r = measure_hessian(args.model, args.out, args.probes, args.batches, args.batch_size, args.seed,
                        args.eigen_iters, args.device)
    print(f"{r['run_id']}: Hessian trace {r['trace']['mean']:.4g} +- {r['trace']['stderr']:.2g}")
    return 0


def cmd_variance(args) -> int:
    from fpq.gpu_slots import acquire_gpu_slot
    from fpq.measure import measure_variance

    acquire_gpu_slot()
    r = measure_variance(args.model, args.out, args.sigma, args.images, args.samples, args.seed, args.device)
    print(f"{r['run_id']}: output variance {r['logit_variance']:.4g} (logits)")
    return 0


def cmd_tables(args) -> int:
    from fpq.tables import build_tables

    expected = [r for r in (args.expected or "").split(",") if r]
    written = build_tables(Path(args.results), Path(args.out), Path(args.reference), expected=expected,
                           metric=args.metric, main_p=args.p)
    print("\n".join(str(p) for p in written))
    return 0


def cmd_figures(args) -> int:
    from fpq.figures import build_figures

    print("\n".join(str(p) for p in build_figures(Path(args.results), Path(args.out))))
    return 0


def cmd_budget(args) -> int:
    from fpq.budget import budget_report
    from fpq.grid import load_workflow_config

    print(budget_report(load_workflow_config(args.configfile), Path(args.timings)))
    return 0


def cmd_runs(args) -> int:
    from fpq.grid import expand, load_workflow_config

    for rid in expand(load_workflow_config(args.configfile)):
        print(rid)
    return 0


def cmd_fetch_data(args) -> int:
    from fpq.data import fetch_torchvision, read_npz

    path = fetch_torchvision(args.dataset, args.root)
    data = read_npz(path, args.dataset)
    print(f"{path}: {len(data.y_train)} train / {len(data.y_test)} test images, {data.num_classes} classes")
    return 0


def cmd_gpu_slot(args) -> int:
    from fpq.gpu_slots import acquire_gpu_slot

    print(acquire_gpu_slot() or "cpu", flush=True)
    time.sleep(args.hold)
    return 0


def _add_run_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="run config (YAML)")
    src.add_argument("--config-json", help="run config as a JSON string (used by the workflow)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. optim.epochs=5")
    p.add_argument("--out", required=True, help="run folder (checkpoint, model.pt, metrics.json)")


def _measure_parser(sub, name: str, help_text: str, seed: int) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--model", required=True, help="a run's model.pt")
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--device", default="auto")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fpq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("pretrain", "train an FP teacher"), ("qat", "quantization-aware training"),
                            ("train", "train any method")):
        _add_run_args(sub.add_parser(name, help=help_text))
    p = _measure_parser(sub, "hessian", "Hessian trace (and top eigenvalue) of a saved model", seed=1234)
    p.add_argument("--probes", type=int, default=64)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--eigen-iters", type=int, default=20)
    p = _measure_parser(sub, "variance", "output variance under Gaussian input noise (Fig. 1)", seed=0)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--samples", type=int, default=16)
    p = sub.add_parser("tables", help="Tables 1-5 and the claims summary from the run folders")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="tables")
    p.add_argument("--reference", default="config/reference_tables.csv")
    p.add_argument("--expected", help="comma-separated run ids the grid expects (to list missing runs)")
    p.add_argument("--metric", choices=["final", "best"], default="final")
    p.add_argument("--p", type=float, default=0.1, help="SFP p of the main tables")
    p = sub.add_parser("figures", help="Fig. 5 (Hessian trajectory) and Fig. 1 (output variance)")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="figures")
    p = sub.add_parser("budget", help="jobs and GPU-hours of a workflow config")
    p.add_argument("--configfile", default="config/config.yaml")
    p.add_argument("--timings", default="config/epoch_seconds.yaml")
    p = sub.add_parser("runs", help="list the run ids of a workflow config")
    p.add_argument("--configfile", default="config/config.yaml")
    p = sub.add_parser("fetch-data", help="download CIFAR with torchvision and convert it to <root>/<dataset>.npz")
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], required=True)
    p.add_argument("--root", default="data")
    p = sub.add_parser("gpu-slot", help="take a GPU slot, print its device, hold it (pool check)")
    p.add_argument("--hold", type=float, default=0.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fpq.data import DataError
    from fpq.io import CheckpointError

    args = build_parser().parse_args(argv)
    commands = {"pretrain": lambda a: cmd_train(a, "pretrain"), "qat": lambda a: cmd_train(a, "qat"),
                "train": lambda a: cmd_train(a, None), "hessian": cmd_hessian, "variance": cmd_variance,
                "tables": cmd_tables, "figures": cmd_figures, "budget": cmd_budget, "runs": cmd_runs,
                "fetch-data": cmd_fetch_data, "gpu-slot": cmd_gpu_slot}
    try:
        return commands[args.command](args)
    except (ConfigError, DataError, CheckpointError, json.JSONDecodeError) as err:
        print(f"fpq: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:
        from fpq.train import DivergenceError

        if isinstance(err, DivergenceError):
            print(f"fpq: error: {err}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
