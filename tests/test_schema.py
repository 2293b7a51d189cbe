"""One source of defaults: the workflow schema's defaults and enums agree with the dataclasses and registries."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from fpq.config import (
    COMPILE_MODES,
    DATASETS,
    QAT_LR,
    TEACHER_LR,
    CudaOverrides,
    DataConfig,
    FinalHessianConfig,
    HessianConfig,
    OptimConfig,
    QuantConfig,
    RuntimeConfig,
    VarianceConfig,
    load_config,
)
from fpq.method.pieces import piece_keys
from fpq.method.registry import METHODS
from fpq.models import MODELS
from fpq.plan.grid import workflow_schema

REPO = Path(__file__).resolve().parent.parent
RAW = (REPO / "workflow" / "schemas" / "config.schema.yaml").read_text()
SCHEMA = workflow_schema()
PROPS, DEFS = SCHEMA["properties"], SCHEMA["$defs"]


def defaults(section: dict) -> dict:
    return {k: v["default"] for k, v in section["properties"].items() if "default" in v}


def dataclass_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


@pytest.mark.parametrize("section, cls, renamed", [
    (PROPS["quant"], QuantConfig, {}),
    (PROPS["hessian"], HessianConfig, {}),
    (PROPS["hessian"], FinalHessianConfig, {"probes": "final_probes", "batches": "final_batches"}),
    (PROPS["variance"], VarianceConfig, {}),
    (DEFS["dataset_source"], DataConfig, {}),
    (PROPS["runtime"], RuntimeConfig, {}),
    (DEFS["teacher_optim"], OptimConfig, {}),
    (DEFS["qat_optim"], OptimConfig, {}),
])
def test_schema_defaults_equal_the_dataclass_defaults(section, cls, renamed):
    schema, code = defaults(section), dataclass_defaults(cls)
    shared = 0
    for name, value in code.items():
        key = renamed.get(name, name)
        if key in schema and value is not None:
            assert schema[key] == value, f"{cls.__name__}.{name}: code {value!r}, schema {schema[key]!r}"
            shared += 1
    assert shared >= 3


def test_the_learning_rate_default_is_the_papers_qat_rate_for_qat_and_ours_for_teachers():
    assert defaults(DEFS["qat_optim"])["lr"] == QAT_LR == 0.01
    assert defaults(DEFS["teacher_optim"])["lr"] == TEACHER_LR
    assert load_config({"arch": "resnet18", "method": "fpq", "teacher": "t.pt"}).optim.lr == 0.01
    assert load_config({"arch": "resnet18"}).optim.lr == TEACHER_LR
    assert load_config({"arch": "resnet18", "method": "lsq", "teacher": "t", "optim": {"lr": 0.05}}).optim.lr == 0.05


def test_every_schema_key_of_a_run_section_exists_in_its_dataclass():
    for section, cls, extra in ((PROPS["quant"], QuantConfig, set()), (PROPS["runtime"], RuntimeConfig, set()),
                                (DEFS["speed_keys"], CudaOverrides, set()),
                                (PROPS["hessian"], HessianConfig, {"final_probes", "final_batches", "eigen_iters",
                                                                   "methods"}),
                                (PROPS["variance"], VarianceConfig, {"methods"})):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(section["properties"]) - extra <= names, cls.__name__


def enums_of(node) -> list[list]:
    if isinstance(node, dict):
        return ([node["enum"]] if "enum" in node else []) + [e for v in node.values() for e in enums_of(v)]
    return [e for v in node for e in enums_of(v)] if isinstance(node, list) else []


def test_the_schema_file_copies_no_registry_by_hand():
    names = set(MODELS) | set(METHODS) | set(DATASETS)
    raw = yaml.safe_load(RAW)
    assert [e for e in enums_of(raw) if names & set(e)] == []
    assert RAW.count("x-registry: ") == 7
    piece_enums = [k for k in piece_keys() if "enum" in k.bounds]  # the pieces' keys come from their files,
    assert RAW.count("x-pieces: ") == 2  # into the config's quant and a grid's readings
    assert len(enums_of(SCHEMA)) == len(enums_of(raw)) + 7 + 2 * len(piece_enums)


def test_the_schemas_quant_keys_are_the_run_configs_and_the_pieces_bounds_are_one_statement():
    raw_quant = yaml.safe_load(RAW)["properties"]["quant"]["properties"]
    assert not set(raw_quant) & {k.name for k in piece_keys()}  # no piece key written in the schema file
    assert set(PROPS["quant"]["properties"]) == {f.name for f in dataclasses.fields(QuantConfig)} - {"w_bits", "a_bits"}
    for key in piece_keys():
        prop = PROPS["quant"]["properties"][key.name]
        assert prop["default"] == getattr(QuantConfig(), key.name) == key.default
        assert {b: prop[b] for b in key.bounds} == key.bounds
        grid_prop = DEFS["grid"]["properties"]["readings"]["items"]["properties"]["quant"]["properties"][key.name]
        assert "default" not in grid_prop and {b: grid_prop[b] for b in key.bounds} == key.bounds  # no default


def test_schema_enums_are_the_registries():
    grid = DEFS["grid"]["properties"]
    assert set(grid["archs"]["items"]["enum"]) == set(MODELS)
    assert set(PROPS["arch_runtime"]["propertyNames"]["enum"]) == set(MODELS)
    assert set(grid["methods"]["items"]["enum"]) == {m for m, s in METHODS.items() if s.quantizer}
    assert set(grid["datasets"]["items"]["enum"]) == set(DATASETS)
    for section in ("hessian", "variance"):
        assert set(PROPS[section]["properties"]["methods"]["items"]["enum"]) == set(METHODS)
    assert tuple(PROPS["runtime"]["properties"]["compile_mode"]["enum"]) == COMPILE_MODES
    assert tuple(DEFS["speed_keys"]["properties"]["compile_mode"]["enum"]) == COMPILE_MODES
    assert set(DEFS["speed_keys"]["properties"]) == {f.name for f in dataclasses.fields(CudaOverrides)}
