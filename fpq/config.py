"""Typed run configuration: frozen dataclasses, strict loading, saved with every result.

One `RunConfig` describes one training run (an FP teacher or a QAT run of any method).
`load_config` rejects unknown keys and wrong types with the dotted key named, and every
range check happens here, before any data is loaded or any model is built.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from fpq.errors import ConfigError
from fpq.method.pieces import piece_keys  # torch-free, as is the method registry
from fpq.method.registry import METHODS
from fpq.quant import FP_BITS, KERNEL_PATHS  # torch-free; a run config speaks in bits

DATASETS = {"cifar10": 10, "cifar100": 100}


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _choice(value: str, key: str, allowed) -> None:
    _require(value in allowed, key, f"{value!r} is not one of {sorted(allowed)}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"
    source: str = "torchvision"  # torchvision: download into `root`; npz: read `path`
    path: str = ""
    root: str = "data"
    train_subset: int = 0  # 0 = the whole train split; N = N/classes images of each class (quick runs, CI)
    test_subset: int = 0

    def __post_init__(self) -> None:
        _choice(self.dataset, "data.dataset", DATASETS)
        _choice(self.source, "data.source", {"torchvision", "npz"})
        _require(self.source != "npz" or bool(self.path), "data.path", "required when data.source is 'npz'")
        _require(self.train_subset >= 0, "data.train_subset", "must be >= 0")
        _require(self.test_subset >= 0, "data.test_subset", "must be >= 0")

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset]


# Learning rate when none is given: the paper's QAT rate (Sec. 4) and our FP-teacher default.
QAT_LR, TEACHER_LR = 0.01, 0.1


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 200
    batch_size: int = 256
    lr: float | None = None  # None: QAT_LR for a QAT run, TEACHER_LR for an FP teacher (RunConfig resolves it)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    quant_weight_decay: bool = False  # whether step sizes / offsets / PACT alpha get weight decay

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "optim.epochs", f"must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.lr is None or self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        _require(0 <= self.momentum < 1, "optim.momentum", f"must be in [0, 1), got {self.momentum}")
        _require(self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class _QuantCore:
    """The quantizer's own keys; `QuantConfig` adds every registered piece's keys after them."""

    w_bits: int = FP_BITS
    a_bits: int = FP_BITS
    first_last_bits: int = 8  # first conv and last FC (QDrop convention)
    calib_images: int = 100  # random training images for min/max calibration

    def __post_init__(self) -> None:
        for key in ("w_bits", "a_bits", "first_last_bits"):
            bits = getattr(self, key)
            _require(2 <= bits <= 8 or bits == FP_BITS, f"quant.{key}", f"must be in 2..8 (or 32 for float), got {bits}")
        _require(self.calib_images >= 1, "quant.calib_images", "must be >= 1")
        for key in piece_keys():  # each piece's bounds, as the workflow schema states them
            problem = key.problem(getattr(self, key.name))
            _require(problem is None, f"quant.{key.name}", problem or "")


# The `quant` section of a run: the quantizer's keys, then each method piece's (fpq.method.pieces:
# sfp_p, sfp_gate, ..., csd_lambda, ..., and a plug-in's), with the pieces' defaults and bounds.
QuantConfig = dataclasses.make_dataclass(
    "QuantConfig", [(k.name, k.type, field(default=k.default)) for k in piece_keys()], bases=(_QuantCore,),
    frozen=True, namespace={"__doc__": "Quantizer and method-piece keys of a run (`quant.*`)."})
QuantConfig.__module__ = __name__


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class CudaOverrides:
    """Speed keys that apply only when a run lands on a CUDA device; None keeps the plain key.

    So one config can ask for bf16 + torch.compile on a GPU while the same run on a CPU stays
    fp32 eager and bitwise reproducible.
    """

    bf16: bool | None = None
    teacher_bf16: bool | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: str | None = None
    fused_optimizer: bool | None = None
    fused_quant: bool | None = None
    csd_compile: bool | None = None
    teacher_cuda_graph: bool | None = None
    cuda_graph: bool | None = None
    kernels: str | None = None

    def __post_init__(self) -> None:
        if self.compile_mode is not None:
            _choice(self.compile_mode, "runtime.cuda.compile_mode", set(COMPILE_MODES))
        if self.kernels is not None:
            _choice(self.kernels, "runtime.cuda.kernels", set(KERNEL_PATHS))

    def given(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RuntimeConfig:
    device: str = "auto"  # auto: CUDA when present, else CPU
    bf16: bool = False  # student forward under bf16 autocast (speed path for CUDA; works on CPU too)
    teacher_bf16: bool = False  # frozen teacher forward under bf16 autocast
    channels_last: bool = False
    compile: bool = False  # torch.compile of the whole training step (student, teacher, losses)
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead adds CUDA graphs
    fused_optimizer: bool = False  # SGD's single fused kernel (torch.optim.SGD(fused=True))
    fused_quant: bool = True  # one autograd function per fake quantizer instead of an op chain
    # Off until a GPU measurement shows they pay (bench/README.md): torch.compile of CSD alone
    # (when the whole step is not compiled), and a CUDA graph of the teacher's forward (ignored
    # off CUDA and inside a compiled step).
    csd_compile: bool = False
    teacher_cuda_graph: bool = False
    # The whole training step (forward, loss, backward) and the test forward replayed from CUDA
    # graphs (fpq/run/step.py; CUDA only, eager elsewhere). Replaces compile: one or the other.
    cuda_graph: bool = False
    # The fused Triton kernels (fpq/kernels: LSQ/LSQ+ fake quantization with SFP's noise inside,
    # CSD) on CUDA, where Triton imports and a one-time self-check against the torch path passes;
    # otherwise, and always on the CPU, the torch path (fpq.run.kernel_check says which, in train.log).
    kernels: str = "triton"
    cuda: CudaOverrides = field(default_factory=CudaOverrides)  # speed keys for CUDA devices only
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    progress: bool = True

    def __post_init__(self) -> None:
        _require(self.device == "auto" or self.device.split(":")[0] in {"cpu", "cuda"},
                 "runtime.device", f"{self.device!r} is not auto, cpu or cuda[:N]")
        _require(self.threads >= 0, "runtime.threads", "must be >= 0")
        _choice(self.compile_mode, "runtime.compile_mode", set(COMPILE_MODES))
        _choice(self.kernels, "runtime.kernels", set(KERNEL_PATHS))
        given = self.cuda.given()
        on_cuda = (given.get("compile", self.compile), given.get("cuda_graph", self.cuda_graph))
        for where, (compiles, graphs) in (("runtime", (self.compile, self.cuda_graph)), ("runtime.cuda", on_cuda)):
            _require(not (compiles and graphs), f"{where}.cuda_graph",
                     "cuda_graph and compile are both on: choose one (cuda_graph replays the eager step)")

    def on(self, device_type: str) -> "RuntimeConfig":
        """The keys in force on a device of this type ('cpu' or 'cuda'): CUDA overrides applied there."""
        given = self.cuda.given() if device_type == "cuda" else {}
        return dataclasses.replace(self, **given, cuda=CudaOverrides())


@dataclass(frozen=True)
class HessianConfig:
    every: int = 0  # measure the trace every k epochs during QAT (0 = off); Fig. 5 trajectory
    probes: int = 16
    batches: int = 1
    batch_size: int = 256
    seed: int = 1234  # fixed batch set and probes, independent of the run seed

    def __post_init__(self) -> None:
        _require(self.every >= 0, "hessian.every", "must be >= 0")
        _require(self.probes >= 2, "hessian.probes", "must be >= 2 (a standard error needs two)")
        _require(self.batches >= 1, "hessian.batches", "must be >= 1")
        _require(self.batch_size >= 1, "hessian.batch_size", "must be >= 1")


@dataclass(frozen=True)
class FinalHessianConfig:
    """The final Hessian measurement of a saved model (`fpq hessian`, the measure_hessian rule)."""

    probes: int = 64
    batches: int = 4
    batch_size: int = 256
    seed: int = 1234
    eigen_iters: int = 20  # power iterations for the top eigenvalue; 0 = skip

    def __post_init__(self) -> None:
        _require(self.probes >= 2, "probes", f"must be >= 2 (a standard error needs two), got {self.probes}")
        _require(self.batches >= 1, "batches", f"must be >= 1, got {self.batches}")
        _require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        _require(self.eigen_iters >= 0, "eigen_iters", f"must be >= 0, got {self.eigen_iters}")


@dataclass(frozen=True)
class VarianceConfig:
    """The Fig. 1 output-variance probe of a saved model (`fpq variance`, the probe_variance rule)."""

    sigma: float = 0.1  # noise std on normalized inputs
    images: int = 500
    samples: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.sigma > 0, "sigma", f"must be > 0, got {self.sigma}")
        _require(self.images >= 1, "images", f"must be >= 1, got {self.images}")
        _require(self.samples >= 2, "samples", f"must be >= 2 (a variance needs two), got {self.samples}")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class RunConfig:
    arch: str
    method: str = "fp"
    seed: int = 0
    run_id: str = ""
    teacher: str = ""  # path of the FP teacher's model.pt (required by every QAT method)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    hessian: HessianConfig = field(default_factory=HessianConfig)

    def __post_init__(self) -> None:
        from fpq.models import MODELS

        _choice(self.arch, "arch", MODELS)
        _choice(self.method, "method", METHODS)
        _require(self.seed >= 0, "seed", "must be >= 0")
        spec = METHODS[self.method]
        if spec.quantizer is None:
            _require(self.quant.w_bits == FP_BITS and self.quant.a_bits == FP_BITS, "quant.w_bits",
                     f"method {self.method!r} trains a float model; w_bits/a_bits must be 32")
        else:
            _require(bool(self.teacher), "teacher", f"method {self.method!r} needs an FP teacher checkpoint")
        if self.optim.lr is None:
            lr = QAT_LR if spec.quantizer is not None else TEACHER_LR
            object.__setattr__(self, "optim", dataclasses.replace(self.optim, lr=lr))

    @property
    def is_qat(self) -> bool:
        return METHODS[self.method].quantizer is not None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    args = [a for a in getattr(tp, "__args__", ()) if a is not type(None)]
    if isinstance(tp, types.UnionType) and len(args) == 1:  # `X | None`: None, or an X
        return None if value is None else _coerce(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        _require(isinstance(value, dict), key, f"expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    _require(ok, key, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


@functools.cache
def _hints(cls) -> dict:
    """A dataclass's resolved field types, once per class: get_type_hints re-evaluates every
    annotation and dominated expanding the paper grid (411 run configs) before."""
    return get_type_hints(cls)


def unknown_keys(cls, data: dict, prefix: str = "") -> list[str]:
    """'optim.epoch: unknown key (did you mean 'optim.epochs'?)' for every key of `data`, nested
    mappings included, that dataclass `cls` does not have."""
    hints, names, found = _hints(cls), [f.name for f in fields(cls)], []
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            found.append(f"{prefix}{key}: unknown key" + (f" (did you mean '{prefix}{close[0]}'?)" if close else ""))
            continue
        tp = hints[key]
        inner = [a for a in getattr(tp, "__args__", ()) if a is not type(None)] if isinstance(tp, types.UnionType) else [tp]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) and isinstance(value, dict):
            found += unknown_keys(inner[0], value, f"{prefix}{key}.")
    return found


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a plain dict; unknown keys and wrong types raise ConfigError."""
    hints = _hints(cls)
    unknown = unknown_keys(cls, data, prefix) if not prefix else []  # the top call checks the nested ones
    if unknown:  # every one at once: a second typo should not cost a second try
        raise ConfigError("; ".join(unknown))
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {err}") from None


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


# Runtime keys that only change how fast a run goes, not what it computes (up to float rounding): not
# part of its identity, so turning one on or off never reruns a finished run or refuses a resume.
SPEED_KEYS = ("compile", "compile_mode", "csd_compile", "teacher_cuda_graph", "cuda_graph", "kernels")
# Runtime keys that are not part of a run's identity (resume, workflow).
NEUTRAL_RUNTIME_KEYS = ("threads", "progress") + SPEED_KEYS

def effective_dict(cfg: RunConfig) -> dict:
    """The keys that can change this run's result: the keys of pieces the method lacks are dropped.

    The workflow tracks this dict per run, so changing, e.g., the KD temperature reruns the KD
    runs only. Thread count, progress output and the speed keys (`SPEED_KEYS`) are not part of
    it. Loading it back gives the same RunConfig up to defaults in the dropped keys.
    """
    data = to_dict(cfg)
    used = {k.name for piece in METHODS[cfg.method].parts for k in piece.keys if k.identity}
    for key in piece_keys():
        if key.name not in used:
            data["quant"].pop(key.name)
    if not cfg.is_qat:
        for key in ("quant", "hessian", "teacher"):
            data.pop(key)
    for key in NEUTRAL_RUNTIME_KEYS:
        data["runtime"].pop(key)
        data["runtime"]["cuda"].pop(key, None)
    return data


def effective_json(cfg: RunConfig) -> str:
    """`effective_dict` as canonical JSON: the run identity tracked by the workflow and by resume."""
    return json.dumps(effective_dict(cfg), sort_keys=True)


def resume_identity(cfg: RunConfig, device_type: str) -> dict:
    """What a checkpoint must match to be resumed: `effective_dict` with the runtime in force on
    this device type, the device named by its type only (cpu:0 is cpu, cuda:1 is cuda, auto is
    what it resolved to) and the CUDA overrides applied or dropped."""
    data = effective_dict(dataclasses.replace(cfg, runtime=cfg.runtime.on(device_type)))
    data["runtime"]["device"] = device_type
    data["runtime"].pop("cuda")
    return data


def dict_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts, e.g. ['optim.lr: 0.1 -> 0.01'].

    >>> dict_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 4})
    ['a.c: 2 -> 3', 'd: (absent) -> 4']
    """
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += dict_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """The mapping a YAML file holds, or one ConfigError line naming `what`, the file and, for a
    syntax error, its line and column (the parser's own message names "<unicode string>" and
    spans several lines)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {_yaml_problem(err)}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} does not hold a mapping (it holds {type(data).__name__})")
    return data


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    """'line 2, column 1: expected ... (while parsing a flow sequence that starts at line 1, column 8)'."""
    def at(mark) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    text = f"{at(err.problem_mark)}: {err.problem}" if err.problem_mark else str(err.problem or err.context)
    if err.context and err.problem_mark:
        text += f" ({err.context}" + (f" that starts at {at(err.context_mark)})" if err.context_mark else ")")
    return text


def load_config(source: str | Path | dict) -> RunConfig:
    """RunConfig from a YAML/JSON file path (errors then name the file) or an already-parsed dict."""
    if isinstance(source, dict):
        return from_dict(RunConfig, source)
    data = read_yaml_mapping(source, "config file")
    try:
        return from_dict(RunConfig, data)
    except ConfigError as err:
        raise ConfigError(f"config file {source}: {err}") from None


def dump_config(cfg: RunConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def with_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b=value` overrides (value parsed as YAML) to a nested config dict."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        _require(bool(sep), item, "override must look like key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return out
