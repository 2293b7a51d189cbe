"""Expand a workflow config (config/*.yaml) into named runs, each a validated RunConfig.

Shared by the Snakefile (to build the DAG), `fpq budget` and the tests. Run ids are readable:
teachers `resnet18_cifar10_fp_s0`, QAT runs `resnet18_cifar10_w2a4_fpq_p0.1_s0` (the p only for
methods that use SFP). One teacher per (dataset, arch, seed) serves every QAT cell that needs it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from fpq.config import ConfigError, RunConfig, load_config
from fpq.methods import METHODS

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
BITS = re.compile(r"^w([2-8])a([2-8])$")


@dataclass(frozen=True)
class Run:
    run_id: str
    config: RunConfig
    teacher_id: str | None  # None for the teachers themselves

    @property
    def folder(self) -> str:
        return f"runs/{self.run_id}"


def parse_bits(text: str) -> tuple[int, int]:
    match = BITS.match(text)
    if not match:
        raise ConfigError(f"bits: {text!r} is not of the form wXaY with X, Y in 2..8")
    return int(match.group(1)), int(match.group(2))


def teacher_id(arch: str, dataset: str, seed: int) -> str:
    return f"{arch}_{dataset}_fp_s{seed}"


def qat_id(arch: str, dataset: str, bits: str, method: str, p: float, seed: int) -> str:
    tag = f"_p{p:g}" if METHODS[method].sfp else ""
    return f"{arch}_{dataset}_{bits}_{method}{tag}_s{seed}"


def _data_section(config: dict, dataset: str) -> dict:
    if dataset not in config["data"]:
        raise ConfigError(f"data.{dataset}: no data source configured for dataset {dataset!r}")
    return {"dataset": dataset, **config["data"][dataset]}


def _teacher(config: dict, arch: str, dataset: str, seed: int) -> Run:
    rid = teacher_id(arch, dataset, seed)
    cfg = load_config({"arch": arch, "method": "fp", "seed": seed, "run_id": rid,
                       "data": _data_section(config, dataset), "optim": config["teacher"],
                       "runtime": config["runtime"]})
    return Run(rid, cfg, None)


def _qat(config: dict, results: str, arch: str, dataset: str, bits: str, method: str, p: float, seed: int) -> Run:
    w_bits, a_bits = parse_bits(bits)
    rid = qat_id(arch, dataset, bits, method, p, seed)
    tid = teacher_id(arch, dataset, seed)
    hessian = {k: v for k, v in config["hessian"].items() if k in ("every", "probes", "batches", "batch_size", "seed")}
    cfg = load_config({"arch": arch, "method": method, "seed": seed, "run_id": rid,
                       "teacher": f"{results}/runs/{tid}/model.pt", "data": _data_section(config, dataset),
                       "optim": config["qat"], "runtime": config["runtime"], "hessian": hessian,
                       "quant": {**config["quant"], "w_bits": w_bits, "a_bits": a_bits, "sfp_p": p}})
    return Run(rid, cfg, tid)


def expand(config: dict) -> dict[str, Run]:
    """All runs of the config, teachers first, each id once (grids may overlap)."""
    results = config["results"]
    runs: dict[str, Run] = {}
    default_p = config["quant"]["sfp_p"]
    for name, grid in config["grids"].items():
        for method in grid["methods"]:
            if method not in METHODS or METHODS[method].quantizer is None:
                raise ConfigError(f"grids.{name}.methods: {method!r} is not a QAT method "
                                  f"({sorted(m for m in METHODS if m != 'fp')})")
        for dataset in grid["datasets"]:
            for arch in grid["archs"]:
                for seed in config["seeds"]:
                    teacher = _teacher(config, arch, dataset, seed)
                    runs.setdefault(teacher.run_id, teacher)
                    for bits in grid["bits"]:
                        for method in grid["methods"]:
                            ps = (grid.get("sfp_p") or [default_p]) if METHODS[method].sfp else [default_p]
                            for p in ps:
                                run = _qat(config, results, arch, dataset, bits, method, p, seed)
                                runs.setdefault(run.run_id, run)
    return dict(sorted(runs.items(), key=lambda kv: kv[1].teacher_id is not None))


def load_workflow_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a workflow config and validate it against the workflow's JSON schema (defaults filled)."""
    config = yaml.safe_load(Path(path).read_text())
    config.update(overrides or {})
    validate_workflow_config(config)
    return config


def validate_workflow_config(config: dict) -> None:
    """Fill schema defaults (through $refs too) and raise ConfigError naming the first bad key."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    errors = sorted(_defaulting_validator()(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{key}: {err.message}")


def _defaulting_validator():
    import copy

    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties})


def final_measurements(config: dict, runs: dict[str, Run]) -> tuple[list[str], list[str]]:
    """Ids of the runs that get the final Hessian measurement and the output-variance probe.

    Only the main-table p of SFP methods is measured (the p sweep is about accuracy).
    """
    main_p = config["quant"]["sfp_p"]

    def pick(methods: list[str]) -> list[str]:
        return [rid for rid, run in runs.items() if run.config.method in methods
                and (not METHODS[run.config.method].sfp or run.config.quant.sfp_p == main_p)]

    return pick(config["hessian"]["methods"]), pick(config["variance"]["methods"])


RUN_ID = re.compile(r"^(?P<arch>[a-z0-9]+)_(?P<dataset>cifar10|cifar100)_(?:w(?P<w_bits>[2-8])a(?P<a_bits>[2-8])_)?"
                    r"(?P<method>[a-z+]+)(?:_p(?P<p>[0-9.]+))?_s(?P<seed>\d+)$")


def parse_run_id(run_id: str) -> dict | None:
    """The cell of a run id made by teacher_id/qat_id; None for anything else."""
    match = RUN_ID.match(run_id)
    if not match:
        return None
    d = match.groupdict()
    return {"arch": d["arch"], "dataset": d["dataset"], "method": d["method"], "seed": int(d["seed"]),
            "w_bits": int(d["w_bits"] or 32), "a_bits": int(d["a_bits"] or 32),
            "p": float(d["p"]) if d["p"] is not None else None}
