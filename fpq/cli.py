"""The `fpq` command: train (pretrain / qat), hessian, variance, index, tables, figures, budget, status, runs.

Argument parsing, `--help`, `budget`, `status`, `runs` and every argument error run without importing
torch (each command imports what it needs). Bad input of any kind ends as `fpq: error: ...`
with exit status 2; a run that diverged ends with status 1 (or 0 with --record-failures).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fpq.config import FinalHessianConfig, VarianceConfig
from fpq.errors import BAD_INPUT, ConfigError

EXIT_BAD_INPUT, EXIT_FAILED = 2, 1
DEFAULT_CONFIG = "config/config.yaml"
SITTING_S = 660  # fpq.plan.sittings.SITTING_S (not imported: argument parsing stays light)
PROJECT = Path(__file__).resolve().parent.parent  # where the Snakefile, config/ and workflow/ live


def project_file(path: str, what: str) -> Path:
    """`path` as given if it exists, else relative to the project (so `cd /tmp && fpq budget` works)."""
    given = Path(path)
    for candidate in (given, PROJECT / given):
        if candidate.exists():
            return candidate
    where = "" if given.is_absolute() else f" (looked in {Path.cwd()} and in the project {PROJECT})"
    raise ConfigError(f"{what} {path} does not exist{where}")


def set_blamed(err: ConfigError, overrides: list[str]) -> str | None:
    """The `--set` item an error is about (errors begin with the key they name), or None.

    >>> set_blamed(ConfigError("optim.epochs: must be >= 1, got -1"), ["seed=1", "optim.epochs=-1"])
    'optim.epochs=-1'
    >>> set_blamed(ConfigError("optim.lr: must be > 0"), ["optim=x"]), set_blamed(ConfigError("seed: bad"), ["s=1"])
    ('optim=x', None)
    """
    key = str(err).split(":")[0]
    return next((item for item in overrides if key == item.partition("=")[0]
                 or key.startswith(item.partition("=")[0] + ".")), None)


def _run_config(args):
    """The RunConfig of a training command, validated before any work starts (torch-free). An error
    names what set the bad value: a `--set` item, else the config file."""
    from fpq.config import load_config, read_yaml_mapping, with_overrides

    overrides = args.set or []
    data = json.loads(args.config_json) if args.config_json else read_yaml_mapping(args.config, "config file")
    try:
        return load_config(with_overrides(data, overrides))
    except ConfigError as err:
        blamed = set_blamed(err, overrides)
        if blamed:
            raise ConfigError(f"--set {blamed}: {err}") from None
        if args.config_json:
            raise
        raise ConfigError(f"config file {args.config}: {err}") from None  # as a workflow config's errors do


def cmd_train(args, stage: str | None) -> int:
    from fpq.plan.gpu_slots import acquire_gpu_slot

    cfg = _run_config(args)
    if stage == "pretrain" and cfg.is_qat or stage == "qat" and not cfg.is_qat:
        raise ConfigError(f"method: {cfg.method!r} is not a {stage} method")
    acquire_gpu_slot()  # sets CUDA_VISIBLE_DEVICES: before torch (imported by fpq.run.train) touches CUDA
    from fpq.run.train import RunFailure, record_failure, run

    try:
        metrics = run(cfg, args.out)
    except RunFailure as err:
        record_failure(args.out, cfg, err, as_result=args.record_failures)
        print(f"fpq: error: {err}" + (" (recorded as a failed result)" if args.record_failures else ""),
              file=sys.stderr)
        return 0 if args.record_failures else EXIT_FAILED
    except Exception as err:
        if not isinstance(err, BAD_INPUT):
            record_failure(args.out, cfg, err)
        raise
    print(f"{cfg.run_id or cfg.method}: final top-1 {metrics['final']['top1']:.2f}% "
          f"(best {metrics['best']['top1']:.2f}% at epoch {metrics['best']['epoch']})")
    return 0


def cmd_hessian(args) -> int:
    from fpq.plan.gpu_slots import acquire_gpu_slot

    settings = FinalHessianConfig(args.probes, args.batches, args.batch_size, args.seed, args.eigen_iters)
    acquire_gpu_slot()
    from fpq.run.measure import measure_hessian

    r = measure_hessian(args.model, args.out, settings, args.device)
    print(f"{r['run_id']}: " + (f"Hessian trace {r['trace']['mean']:.4g} +- {r['trace']['stderr']:.2g}"
                                if r["status"] == "ok" else r["error"]))
    return 0


def cmd_variance(args) -> int:
    from fpq.plan.gpu_slots import acquire_gpu_slot

    settings = VarianceConfig(args.sigma, args.images, args.samples, args.seed)
    acquire_gpu_slot()
    from fpq.run.measure import measure_variance

    r = measure_variance(args.model, args.out, settings, args.device)
    print(f"{r['run_id']}: " + (f"output variance {r['logit_variance']:.4g} (logits)" if r["status"] == "ok"
                                else r["error"]))
    return 0


def _workflow_config(args, sitting: bool = True) -> dict:
    """A workflow config from --config-json (the workflow, run in the project) or --configfile
    (found from anywhere); relative folders in it are relative to the project, where Snakemake runs."""
    from fpq.plan.blocks import sitting_config
    from fpq.plan.grid import in_project, load_workflow_config, prepare_workflow_config

    if getattr(args, "config_json", None):
        config = prepare_workflow_config(json.loads(args.config_json))
    else:
        config = in_project(load_workflow_config(project_file(args.configfile or DEFAULT_CONFIG, "workflow config")),
                            PROJECT)
    return sitting_config(config) if sitting else config  # with blocks, a sitting: the seeds no block finished


def _index(args):
    """The run index: read from --index, else built from the workflow config."""
    from fpq.plan.grid import expand
    from fpq.plan.index import RunIndex, read_index

    if getattr(args, "index", None):
        return read_index(args.index), None
    config = _workflow_config(args)
    return RunIndex.from_plan(expand(config)), config


def cmd_index(args) -> int:
    from fpq.io import write_text

    index, config = _index(args)
    out = Path(args.out or Path(config["results"]) / "index.json")
    write_text(out, index.to_json())
    print(f"{out}: {len(index.runs)} runs, {len(index.entries)} grid entries")
    return 0


def _folders(args, key: str):
    index, config = _index(args)
    results = Path(args.results or (config["results"] if config else Path(args.index).parent))
    out = Path(args.out or (config[key] if config else key))
    return index, config, results, out


def _collected(args, key: str, metric: str = "final"):
    """What tables and figures read: one results folder, or every block of the study pooled
    (`--blocks`, or the config's `blocks:`) with the sitting in progress, if any; `--blocks` alone:
    the blocks only."""
    from fpq.plan.blocks import blocks_folder, read_blocks
    from fpq.report.pooling import pool
    from fpq.report.results import collect

    if args.blocks and not (args.index or args.configfile or args.config_json):
        blocks = read_blocks(args.blocks)
        if not blocks:
            raise ConfigError(f"--blocks {args.blocks}: no block there (a block is a folder with run.json and "
                              f"results/: `fpq unpack PACK --block --into {args.blocks}`)")
        return pool(blocks, None, metric), None, Path(args.out or key)
    index, config, results, out = _folders(args, key)
    blocks = read_blocks(args.blocks or (blocks_folder(config) if config else None))
    if not blocks:
        return collect(results, index, metric), config, out
    return pool(blocks, (results, index) if index.runs else None, metric), config, out


def cmd_tables(args) -> int:
    from fpq.report.tables import write_tables

    collected, config, out = _collected(args, "tables", args.metric)
    reference = project_file(args.reference or (config["reference"] if config else "config/reference_tables.csv"),
                             "reference table")
    print("\n".join(str(p) for p in write_tables(collected, out, reference, args.metric)))
    return 0


def cmd_figures(args) -> int:
    from fpq.report.figures import build_figures

    collected, _, out = _collected(args, "figures")
    grids = tuple(g.strip() for g in args.curve_grids.split(",") if g.strip())
    print("\n".join(str(p) for p in build_figures(collected, out, grids)))
    return 0


def cmd_budget(args) -> int:
    from fpq.plan.budget import budget_report
    from fpq.plan.budget_breakdown import breakdown_report

    from fpq.plan.blocks import sitting_config
    from fpq.plan.sittings import study_report

    timings = project_file(args.timings, "timings file")
    study = _workflow_config(args, sitting=False)
    config = sitting_config(study)  # with blocks: the next sitting's seeds
    print(budget_report(config, timings, args.gpus))
    print(breakdown_report(config, timings))
    if study["blocks"] or study["qat_schedule"] or args.sitting_s:
        print(study_report(study, timings, args.sitting_s or SITTING_S))
    return 0


def cmd_status(args) -> int:
    from fpq.plan.status import format_status, read_status

    timings = project_file(args.timings, "timings file")
    print(format_status(read_status(_workflow_config(args), timings)))
    return 0


def cmd_runs(args) -> int:
    from fpq.plan.grid import expand

    for rid in expand(_workflow_config(args)).runs:
        print(rid)
    return 0


def cmd_pack(args) -> int:
    from fpq.plan.archive import pack

    config = _workflow_config(args)
    info = json.loads(args.info) if args.info else {}
    out = pack(config["results"], config["tables"], config["figures"], args.out, {"config": config["name"], **info})
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB")
    return 0


def cmd_unpack(args) -> int:
    import tempfile

    from fpq.plan.archive import unpack
    from fpq.plan.blocks import make_block

    if not args.block:
        files = unpack(args.archive, args.into)
        print(f"{args.into}: {len(files)} files")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        unpack(args.archive, tmp)
        block = make_block(tmp, args.into, origin=args.archive)
    print(f"{block.path}: block {block.name}, {block.info['finished_runs']} finished runs "
          f"(teacher top-1 {', '.join(f'{v:.2f}%' for v in block.info['teacher_top1'].values()) or '—'})")
    return 0


def cmd_schedule(args) -> int:
    from fpq.report.schedule import build_schedule

    print("\n".join(str(p) for p in build_schedule(args.blocks, args.out)))
    return 0


def cmd_fetch_data(args) -> int:
    from fpq.run.data import fetch_torchvision, read_npz

    path = fetch_torchvision(args.dataset, args.root)
    data = read_npz(path, args.dataset)
    print(f"{path}: {len(data.y_train)} train / {len(data.y_test)} test images, {data.num_classes} classes")
    return 0


def cmd_gpu_slot(args) -> int:
    from fpq.plan.gpu_slots import acquire_gpu_slot

    print(acquire_gpu_slot() or "cpu", flush=True)
    time.sleep(args.hold)
    return 0


def _at_least(kind, minimum, strict: bool = False):
    """An argparse type: a number of `kind` >= minimum (> minimum when strict)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT, COUNT, POSITIVE = _at_least(int, 1), _at_least(int, 0), _at_least(float, 0, strict=True)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="run config (YAML)")
    src.add_argument("--config-json", help="run config as a JSON string (used by the workflow)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. optim.epochs=5")
    p.add_argument("--out", required=True, help="run folder (checkpoint, model.pt, metrics.json, train.log)")
    p.add_argument("--record-failures", action="store_true",
                   help="a run that diverges (or whose teacher failed) writes metrics.json with status "
                        "'failed' and exits 0, so the workflow's tables still build (the workflow sets this)")


def _measure_parser(sub, name: str, help_text: str, defaults) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--model", required=True, help="a run's model.pt")
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument("--seed", type=COUNT, default=defaults.seed)
    p.add_argument("--device", default="auto")
    return p


def _source_args(p: argparse.ArgumentParser, with_index: bool = True) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--configfile", help=f"workflow config (default: {DEFAULT_CONFIG})")
    src.add_argument("--config-json", help=argparse.SUPPRESS)  # the workflow passes its config this way
    if with_index:
        src.add_argument("--index", help="a run index (<results>/index.json) instead of a workflow config")


BLOCKS_HELP = ("a study's blocks folder: pool every block's runs (with the config's or index's runs, if given; "
               "alone: the blocks only). Default: the config's `blocks:`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fpq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("pretrain", "train an FP teacher"), ("qat", "quantization-aware training"),
                            ("train", "train any method")):
        _add_run_args(sub.add_parser(name, help=help_text))
    h = FinalHessianConfig()
    p = _measure_parser(sub, "hessian", "Hessian trace (and top eigenvalue) of a saved model", h)
    p.add_argument("--probes", type=_at_least(int, 2), default=h.probes)
    p.add_argument("--batches", type=POSITIVE_INT, default=h.batches)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=h.batch_size)
    p.add_argument("--eigen-iters", type=COUNT, default=h.eigen_iters, help="0 skips the top eigenvalue")
    v = VarianceConfig()
    p = _measure_parser(sub, "variance", "output variance under Gaussian input noise (Fig. 1)", v)
    p.add_argument("--sigma", type=POSITIVE, default=v.sigma)
    p.add_argument("--images", type=POSITIVE_INT, default=v.images)
    p.add_argument("--samples", type=_at_least(int, 2), default=v.samples)
    p = sub.add_parser("index", help="write the run index of a workflow config (<results>/index.json)")
    _source_args(p, with_index=False)
    p.add_argument("--out", help="default: <results>/index.json")
    p = sub.add_parser("tables", help="Tables 1-5 and the claims summary from the runs of a run index")
    _source_args(p)
    p.add_argument("--results", help="folder holding runs/ (default: the config's, or the index's folder)")
    p.add_argument("--out", help="default: the config's tables folder")
    p.add_argument("--reference", help="the paper's numbers (default: the config's reference)")
    p.add_argument("--metric", choices=["final", "best"], default="final")
    p.add_argument("--blocks", help=BLOCKS_HELP)
    p = sub.add_parser("figures", help="Fig. 5 (Hessian trajectory), Fig. 1 (output variance), training curves")
    _source_args(p)
    p.add_argument("--results", help="folder holding runs/ (default: the config's, or the index's folder)")
    p.add_argument("--out", help="default: the config's figures folder")
    p.add_argument("--blocks", help=BLOCKS_HELP)
    p.add_argument("--curve-grids", default="ablation",
                   help="grids whose cells get a training-curve panel, comma-separated (e.g. ablation,main)")
    p = sub.add_parser("budget", help="jobs and GPU-hours of a workflow config")
    _source_args(p, with_index=False)
    p.add_argument("--timings", default="config/epoch_seconds.yaml")
    p.add_argument("--gpus", type=POSITIVE_INT, default=4, help="GPUs of the node for the wall-time line (default 4)")
    p.add_argument("--sitting-s", type=POSITIVE, help=f"price the study in sittings (blocks) of this many GPU "
                                                      f"seconds (default {SITTING_S} where the config has blocks)")
    p = sub.add_parser("status", help="where a campaign stands: runs done / running (epoch, ETA) / stopped / "
                                      "failed (error) / missing per grid and cell, GPU-hours spent vs budget")
    _source_args(p, with_index=False)
    p.add_argument("--timings", default="config/epoch_seconds.yaml")
    p = sub.add_parser("runs", help="list the run ids of a workflow config")
    _source_args(p, with_index=False)
    p = sub.add_parser("pack", help="pack a config's results (no weights), tables and figures into one .tar.gz")
    _source_args(p, with_index=False)
    p.add_argument("--out", required=True)
    p.add_argument("--info", help="JSON object saved as run.json in the pack (GPU, versions, wall time)")
    p = sub.add_parser("unpack", help="unpack a results pack into a folder (results/, tables/, figures/)")
    p.add_argument("archive")
    p.add_argument("--into", required=True, help="a folder; with --block, the study's blocks folder")
    p.add_argument("--block", action="store_true",
                   help="make the pack a block of a study in --into: <date>-<gpu>/ with run.json and the finished "
                        "runs' results (no tables, no figures; unfinished runs dropped)")
    p = sub.add_parser("schedule", help="a schedule study (qat_schedule): FPQ - LSQ against QAT epochs, from the "
                                        "blocks of each point (<blocks>/q<epochs>/)")
    p.add_argument("--blocks", required=True, help="the study's blocks folder (e.g. reference/schedule)")
    p.add_argument("--out", required=True, help="folder for schedule.md and schedule_gain.png|pdf")
    p = sub.add_parser("fetch-data", help="download CIFAR with torchvision and convert it to <root>/<dataset>.npz")
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], required=True)
    p.add_argument("--root", default="data")
    p = sub.add_parser("gpu-slot", help="take a GPU slot, print its device, hold it (pool check)")
    p.add_argument("--hold", type=float, default=0.0)
    return parser


COMMANDS = {"pretrain": lambda a: cmd_train(a, "pretrain"), "qat": lambda a: cmd_train(a, "qat"),
            "train": lambda a: cmd_train(a, None), "hessian": cmd_hessian, "variance": cmd_variance,
            "index": cmd_index, "tables": cmd_tables, "figures": cmd_figures, "budget": cmd_budget, "status": cmd_status,
            "runs": cmd_runs, "pack": cmd_pack, "unpack": cmd_unpack, "schedule": cmd_schedule,
            "fetch-data": cmd_fetch_data, "gpu-slot": cmd_gpu_slot}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (*BAD_INPUT, json.JSONDecodeError) as err:
        print(f"fpq: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # e.g. the disk filled up while writing a result
        print(f"fpq: error: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
