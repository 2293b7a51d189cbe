"""Expand a workflow config (config/*.yaml) into its plan: the runs, and the cells each grid asks for.

Shared by the Snakefile (to build the DAG), `fpq index`, `fpq budget`, `fpq runs` and the tests.
Every run is named by its `Cell` (fpq/run/cell.py); a cell that is the same run as another (FPQ at
p = 0 is LSQ+CSD) is answered by that run, so it is trained once and shown in both tables. One
teacher per (dataset, arch, seed) serves every QAT cell that needs it (or one per (dataset, arch)
with `teacher_seed`).
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from fpq.config import DATASETS, ConfigError, HessianConfig, RunConfig, load_config, read_yaml_mapping
from fpq.method.pieces import piece_keys
from fpq.method.registry import METHODS, reading_of, reading_values
from fpq.plan.overrides import apply_overrides, describe, overridden
from fpq.plan.table_specs import GRID_TABLES
from fpq.run.cell import Cell

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = PROJECT / "workflow" / "schemas" / "config.schema.yaml"
BITS = re.compile(r"^w([2-8])a([2-8])$")
FOLDER_KEYS = ("results", "tables", "figures")
TRAJECTORY_KEYS = tuple(f.name for f in fields(HessianConfig))  # the hessian keys a QAT run itself uses


@dataclass(frozen=True)
class Run:
    cell: Cell
    config: RunConfig
    teacher_id: str | None  # None for the teachers themselves

    @property
    def run_id(self) -> str:
        return self.cell.run_id


@dataclass(frozen=True)
class Plan:
    """Everything a workflow config asks for, computed once."""

    name: str
    main_p: float  # the SFP p of the main tables and of Fig. 5's FPQ series
    runs: dict[str, Run]  # by run id, teachers first
    grids: dict[str, list[tuple[Cell, str]]]  # grid -> (cell as the grid asks for it, run id answering it)
    hessian_ids: list[str]  # runs that get the final Hessian measurement
    variance_ids: list[str]  # runs that get the Fig. 1 output-variance probe
    main_readings: dict[str, str] = field(default_factory=dict)  # method -> the reading `quant` gives it ('' omitted)

    def ids(self, stage: str) -> list[str]:
        """Run ids of one stage: 'teacher' or 'qat'."""
        return [rid for rid, run in self.runs.items() if (run.teacher_id is None) == (stage == "teacher")]


def parse_bits(text: str) -> tuple[int, int]:
    match = BITS.match(text)
    if not match:
        raise ConfigError(f"bits: {text!r} is not of the form wXaY with X, Y in 2..8")
    return int(match.group(1)), int(match.group(2))


def merged(base: dict, extra: dict) -> dict:
    """A copy of `base` with `extra` laid over it, mapping by mapping (a runtime with its arch_runtime).

    >>> merged({"a": 1, "cuda": {"x": 1, "y": 2}}, {"cuda": {"y": 3}, "b": 4})
    {'a': 1, 'cuda': {'x': 1, 'y': 3}, 'b': 4}
    """
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_config(config: dict, cell: Cell, teacher_id: str | None) -> RunConfig:
    """The RunConfig of one cell under a workflow config (validated here, before any job)."""
    if cell.dataset not in config["data"]:
        raise ConfigError(f"data.{cell.dataset}: no data source configured for dataset {cell.dataset!r}")
    runtime = merged(config["runtime"], config["arch_runtime"].get(cell.arch, {}))
    data = {"arch": cell.arch, "method": cell.method, "seed": cell.seed, "run_id": cell.run_id,
            "data": {"dataset": cell.dataset, **config["data"][cell.dataset]}, "runtime": runtime}
    if teacher_id is None:
        return load_config({**data, "optim": config["teacher"]})
    hessian = {k: v for k, v in config["hessian"].items() if k in TRAJECTORY_KEYS}
    if cell.method not in config["hessian"]["methods"]:
        hessian["every"] = 0  # Fig. 5 shows the trajectory of hessian.methods only; the rest skip its cost
    quant = {**config["quant"], "w_bits": cell.w_bits, "a_bits": cell.a_bits,
             **reading_values(cell.method, cell.reading)}  # the cell's reading, the defaults elsewhere
    if cell.p is not None:
        quant[METHODS[cell.method].cell_key] = cell.p
    return load_config({**data, "optim": config["qat"], "hessian": hessian, "quant": quant,
                        "teacher": f"{config['results']}/runs/{teacher_id}/model.pt"})


def _grid_cells(name: str, grid: dict, seeds: list[int], main_p: float, quant: dict):
    """The grid's cells: its methods at the config's `quant`, then each of its `readings` (methods at
    reading keys of their own), every one over datasets x archs x seeds x bits (x p)."""
    groups = [(grid["methods"], {})] + [(r["methods"], r["quant"]) for r in grid["readings"]]
    for method in dict.fromkeys(m for methods, _ in groups for m in methods):
        if method not in METHODS or METHODS[method].quantizer is None:
            raise ConfigError(f"grids.{name}.methods: {method!r} is not a QAT method "
                              f"({sorted(m for m in METHODS if METHODS[m].quantizer)})")
    for dataset in grid["datasets"]:
        for arch in grid["archs"]:
            for seed in seeds:
                for bits in grid["bits"]:
                    w_bits, a_bits = parse_bits(bits)
                    for methods, keys in groups:
                        for method in methods:
                            reading = reading_of(method, {**quant, **keys})  # the reading's keys win
                            for p in (grid["sfp_p"] or [main_p]) if METHODS[method].cell_key else [None]:
                                yield Cell(dataset, arch, method, w_bits, a_bits, p, seed, reading)


def _check_methods(config: dict, section: str) -> list[str]:
    methods = config[section]["methods"]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"{section}.methods: {unknown} not among {sorted(METHODS)}")
    return methods


def expand(config: dict) -> Plan:
    """The plan of a validated workflow config (see load_workflow_config)."""
    main_p = float(config["quant"]["sfp_p"])
    unknown = sorted(set(config["grids"]) - set(GRID_TABLES))
    if unknown:
        raise ConfigError(f"grids: {unknown} feed no table (known grids: {sorted(GRID_TABLES)})")
    teachers: dict[str, Run] = {}
    qat: dict[str, Run] = {}
    grids: dict[str, list[tuple[Cell, str]]] = {}
    for name, grid in config["grids"].items():
        entries = []
        for cell in _grid_cells(name, grid, config["seeds"], main_p, config["quant"]):
            teacher_cell = cell.teacher(config["teacher_seed"])
            tid = teacher_cell.run_id
            if tid not in teachers:
                teachers[tid] = Run(teacher_cell, run_config(config, teacher_cell, None), None)
            entries.append((teacher_cell, tid))
            run_cell = cell.canonical()
            if run_cell.run_id not in qat:
                qat[run_cell.run_id] = Run(run_cell, run_config(config, run_cell, tid), tid)
            entries.append((cell, run_cell.run_id))
        grids[name] = sorted(dict.fromkeys(entries), key=lambda e: e[0].sort_key())
    runs = {**teachers, **qat}

    def measured(section: str) -> list[str]:
        methods = _check_methods(config, section)
        return [rid for rid, run in runs.items() if run.cell.method in methods
                and (run.cell.p is None or run.cell.p == main_p)]

    readings = {m: r for m in METHODS if METHODS[m].quantizer and (r := reading_of(m, config["quant"]))}
    return Plan(config["name"], main_p, runs, grids, measured("hessian"), measured("variance"), readings)


def load_workflow_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a workflow config, validate it against the workflow's JSON schema (defaults filled),
    name it after its file unless it names itself, and resolve its folders."""
    path = Path(path)
    config = read_yaml_mapping(path, "workflow config")
    config.update(overrides or {})
    config.setdefault("name", path.stem)
    return prepare_workflow_config(config, source=f"workflow config {path}")


def in_project(config: dict, project: str | Path) -> dict:
    """`config`'s folders (results, tables, figures, the reference table and, where set, blocks) taken
    relative to `project`, where Snakemake runs (an absolute path stays as it is); in place."""
    for key in FOLDER_KEYS + ("reference",) + (("blocks",) if config["blocks"] else ()):
        config[key] = str(Path(project) / config[key])
    return config


def prepare_workflow_config(config: dict, source: str = "", overrides: dict | None = None) -> dict:
    """Validate in place (defaults filled; ConfigError naming `source`, e.g. the file, and the
    first bad key) and resolve the `{name}` in the folders. The Snakefile and
    load_workflow_config both end here. `overrides`: Snakemake's --config values, typed here as
    YAML types them (fpq.plan.overrides); a bad value under a key they set is blamed on --config."""
    typed = apply_overrides(config, overrides) if overrides else {}
    try:
        validate_workflow_config(config)
    except ConfigError as err:
        if any(overridden(path, typed) for path in getattr(err, "paths", [])):
            source = describe(typed)
        raise ConfigError(f"{source}: {err}" if source else str(err)) from None
    schedule_point(config)
    for key in FOLDER_KEYS:
        config[key] = config[key].format(name=config["name"])
    return config


def schedule_point(config: dict) -> None:
    """A schedule study's point (`qat_schedule`): `qat.epochs` must be one of its epochs, and the
    config is named after it, `<name>-q<epochs>` (idempotent: a prepared config passes again)."""
    points, epochs = config.get("qat_schedule") or [], config["qat"]["epochs"]
    if not points:
        return
    if epochs not in points:
        raise ConfigError(f"qat.epochs: {epochs} is not a point of qat_schedule {points}")
    if not config["name"].endswith(f"-q{epochs}"):
        config["name"] = f"{config['name']}-q{epochs}"


def registry_enums() -> dict[str, list[str]]:
    """The names each `x-registry` of the schema stands for, from the registries themselves."""
    from fpq.models import MODELS, model_rank

    return {"datasets": list(DATASETS), "models": sorted(MODELS, key=model_rank), "methods": list(METHODS),
            "qat_methods": [m for m, spec in METHODS.items() if spec.quantizer is not None]}


def _fill_registries(node, enums: dict):
    if isinstance(node, dict):
        if "x-pieces" in node:  # the method pieces' keys, each with its bounds, default and description
            keys = {k.name: k.schema() for k in piece_keys()}
            if node["x-pieces"] == "overrides":  # a grid's own values: no defaults, the config's quant fills in
                keys = {name: {k: v for k, v in prop.items() if k != "default"} for name, prop in keys.items()}
            node = {**{k: v for k, v in node.items() if k != "x-pieces"},
                    "properties": {**node.get("properties", {}), **keys}}
        if "x-registry" in node:
            node = {**{k: v for k, v in node.items() if k != "x-registry"}, "enum": enums[node["x-registry"]]}
        return {k: _fill_registries(v, enums) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill_registries(v, enums) for v in node]
    return node


def workflow_schema() -> dict:
    """workflow/schemas/config.schema.yaml with each `x-registry: name` replaced by that registry's
    enum, and the `x-pieces` section given the method pieces' keys."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where built: the schema is large
    return _fill_registries(yaml.load(SCHEMA.read_text(), Loader=loader), registry_enums())


def validate_workflow_config(config: dict) -> None:
    """Fill schema defaults (through $refs too) and raise ConfigError naming every unknown key (each
    with a "did you mean", as a run config's), else the first bad value."""
    schema = workflow_schema()
    errors = sorted(_defaulting_validator()(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    unknown = [text for e in errors if e.validator == "additionalProperties"
               for text in _unknown_keys([str(p) for p in e.absolute_path], e)]
    if unknown:  # every unknown key at once: a second typo should not cost a second try
        raise _config_error("; ".join(t for t, _ in unknown), [path for _, path in unknown])
    if errors:
        where = [str(p) for p in errors[0].absolute_path]
        raise _config_error(f"{'.'.join(where) or '(top level)'}: {errors[0].message}", [where])


def _config_error(text: str, paths: list[list[str]]) -> ConfigError:
    """A ConfigError that also carries the key paths it names (`paths`), for prepare_workflow_config's blame."""
    err = ConfigError(text)
    err.paths = paths
    return err


def _unknown_keys(where: list[str], err) -> list[tuple[str, list[str]]]:
    """"quant.w_bit: unknown key (did you mean 'quant.w_bits'?)", with the key's path, for each key of a
    mapping the schema lacks."""
    known = list(err.schema.get("properties", {}))
    extra = [str(k) for k in err.instance if k not in known] if isinstance(err.instance, dict) else []
    prefix, out = "".join(f"{p}." for p in where), []
    for key in extra:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
        out.append((f"{prefix}{key}: unknown key{hint}", [*where, key]))
    return out


def _defaulting_validator():
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

