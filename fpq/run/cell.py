"""A run's identity: (dataset, arch, w_bits, a_bits, method, p, reading, seed), built once and read everywhere.

The workflow builds a `Cell` for every run it plans, the run records it in each result file, and
tables, claims and figures read cells from the run index: no reader works a cell out again from a
run id or a folder name. `canonical()` maps cells that are the same run onto one: SFP at p = 0
perturbs nothing, so FPQ at p = 0 *is* the LSQ+CSD run (and LSQ+SFP at p = 0 the LSQ run).
A cell's `reading` names the method's reading keys away from their defaults (CSD's `csd_lambda`,
`csd_reduce`, `csd_taps`: choices the paper leaves open), so two readings of one method are two runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from fpq.config import DATASETS, FP_BITS, ConfigError
from fpq.method.registry import METHODS, method_rank, reading_of, reading_tag, reading_values
from fpq.models import model_label, model_rank

# Labels and the paper's order of rows come from the registries (fpq.models: `label`, `rank`;
# fpq.method.registry: `label`, registration order); names the paper does not have come after.
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def arch_label(arch: str) -> str:
    return model_label(arch)


def method_label(method: str) -> str:
    spec = METHODS.get(method)
    return (spec.label or method) if spec else method


def arch_rank(arch: str) -> tuple:
    return model_rank(arch)


def bits_label(w_bits: int, a_bits: int) -> str:
    """'W2A4', or 'FP' for a float model.

    >>> bits_label(2, 4), bits_label(32, 32)
    ('W2A4', 'FP')
    """
    return "FP" if w_bits == FP_BITS and a_bits == FP_BITS else f"W{w_bits}A{a_bits}"


def bits_rank(w_bits: int, a_bits: int) -> tuple[int, int]:
    """Wider first, as the paper orders W4A4, W2A4, W2A2 (FP before all)."""
    return (-w_bits, -a_bits)


def setting_rank(setting: tuple) -> tuple:
    """Paper order of a (dataset, arch, w_bits, a_bits) setting.

    >>> sorted([("cifar10", "mobilenetv1", 2, 4), ("cifar10", "resnet18", 2, 2), ("cifar10", "resnet18", 4, 4)],
    ...        key=setting_rank)[0]
    ('cifar10', 'resnet18', 4, 4)
    """
    dataset, arch, w_bits, a_bits = setting
    return (dataset, arch_rank(arch), bits_rank(w_bits, a_bits))


@dataclass(frozen=True)
class Cell:
    dataset: str
    arch: str
    method: str
    w_bits: int = FP_BITS
    a_bits: int = FP_BITS
    p: float | None = None  # SFP probability; None for a method without SFP
    seed: int = 0
    reading: str = ""  # the method's reading keys away from their defaults, "csd_lambda=0.2,csd_reduce=mean"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method: {self.method!r} is not one of {sorted(METHODS)}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: {self.dataset!r} is not one of {sorted(DATASETS)}")
        spec = METHODS[self.method]
        if (spec.cell_key is not None) != (self.p is not None):
            raise ConfigError(f"cell {self.method}: p must be given exactly for methods with SFP, got {self.p}")
        if spec.quantizer is None and (self.w_bits, self.a_bits) != (FP_BITS, FP_BITS):
            raise ConfigError(f"cell {self.method}: a float model has no bit setting, got W{self.w_bits}A{self.a_bits}")
        if self.p is not None:
            object.__setattr__(self, "p", float(self.p))
        try:  # one spelling per reading: the canonical order and format of reading_of
            object.__setattr__(self, "reading", reading_of(self.method, reading_values(self.method, self.reading)))
        except ValueError as err:
            raise ConfigError(f"cell {self.method}: {err}") from None

    @property
    def is_qat(self) -> bool:
        return METHODS[self.method].quantizer is not None

    @property
    def bits(self) -> str:
        return bits_label(self.w_bits, self.a_bits)

    @property
    def run_id(self) -> str:
        """Readable and unique: resnet18_cifar10_fp_s0, resnet18_cifar10_w2a4_fpq_p0.1_s0.

        >>> Cell("cifar10", "resnet18", "fpq", 2, 4, 0.1, 3).run_id
        'resnet18_cifar10_w2a4_fpq_p0.1_s3'
        """
        bits = f"_w{self.w_bits}a{self.a_bits}" if self.is_qat else ""
        p = f"_p{self.p:g}" if self.p is not None else ""
        reading = f"_{reading_tag(self.method, self.reading)}" if self.reading else ""
        return f"{self.arch}_{self.dataset}{bits}_{self.method}{p}{reading}_s{self.seed}"

    def canonical(self) -> "Cell":
        """The cell of the run that answers this one: a piece at its neutral value (SFP at p = 0)
        does nothing, so the cell is the method without that piece.

        >>> Cell("cifar10", "resnet18", "fpq", 2, 4, 0.0).canonical().method
        'lsq+csd'
        """
        spec = METHODS[self.method]
        if self.p is None or not any(piece.cell_key and self.p == piece.neutral for piece in spec.parts):
            return self
        twins = [m for m, s in METHODS.items() if s.cell_key is None and s.without_cell_key() == spec.without_cell_key()]
        return replace(self, method=twins[0], p=None) if twins else self  # the twin has the same reading keys

    def teacher(self, seed: int | None = None) -> "Cell":
        """The FP teacher's cell: same dataset and arch, the given seed (default: this cell's)."""
        return Cell(self.dataset, self.arch, "fp", seed=self.seed if seed is None else seed)

    def sort_key(self) -> tuple:
        """Paper order: dataset, arch, bits (wider first), method, p, reading (the suite's own first), seed."""
        return (self.dataset, arch_rank(self.arch), bits_rank(self.w_bits, self.a_bits),
                method_rank(self.method), -1.0 if self.p is None else self.p, self.reading, self.seed)

    def as_dict(self) -> dict:
        """The cell as result files record it (no `reading` key for the suite's own reading, as
        every cell was written before readings existed)."""
        data = asdict(self)
        if not self.reading:
            data.pop("reading")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Cell":
        return cls(**data)

    @classmethod
    def from_config(cls, cfg) -> "Cell":
        """The cell of a RunConfig (what a run records about itself)."""
        spec = METHODS[cfg.method]
        return cls(cfg.data.dataset, cfg.arch, cfg.method, cfg.quant.w_bits, cfg.quant.a_bits,
                   getattr(cfg.quant, spec.cell_key) if spec.cell_key else None, cfg.seed,
                   reading_of(cfg.method, asdict(cfg.quant)))
