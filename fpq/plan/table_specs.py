"""The paper's tables as data: which grid feeds each, which methods are its rows, what it is compared to.

Adding a table is one grid in a config and one `TableSpec` here; `fpq/report/tables.py` renders every
spec the same way (Markdown and LaTeX). Torch- and pandas-free: the grid expansion reads the
grid names from here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str  # output file stem, tables/<name>.md|tex
    title: str  # without "Table N:" (LaTeX numbers its tables itself)
    paper_table: str  # the `table` column of config/reference_tables.csv
    grid: str  # the workflow grid that feeds it
    methods: tuple[str, ...]  # row order; methods outside the grid are not shown
    fp_row: bool = False  # the FP teacher as the first row of each arch
    dataset: str | None = None  # only this dataset's cells (Tables 4, 5)
    by_p: bool = False  # one row per SFP p (Table 3) instead of the main p only
    label: str = ""  # what the report lists it as, after its number: "Table 2 — ablation"

    @property
    def number(self) -> str:
        """The paper's name for it, 'Table 2'; a table of the suite's own (no paper table) by its label."""
        return self.paper_table.replace("table", "Table ") if self.paper_table else "Readings"

    @property
    def report_label(self) -> str:
        """
        >>> TABLES[1].report_label
        'Table 2 — ablation of SFP and CSD'
        """
        return f"{self.number} — {self.label}"

    def fed_by(self, grids: dict) -> bool:
        """Whether a plan's grids (grid -> [(cell, run id)], fpq.plan.grid.Plan.grids) give it a row."""
        return any(self.dataset in (None, cell.dataset) for cell, _ in grids.get(self.grid, ()))

    def paper_method(self, method: str, p: float | None) -> str:
        """The method's name in reference_tables.csv: 'fpq', or 'fpq(p=0.3)' in the p sweep."""
        return f"{method}(p={p:g})" if self.by_p and p is not None else method


TABLES: tuple[TableSpec, ...] = (
    TableSpec("table1_sam", "LSQ+SAM vs FPQ, top-1 (%)", "table1", "sam", ("lsq+sam", "fpq"), fp_row=True,
              label="LSQ+SAM vs FPQ"),
    TableSpec("table2_ablation", "Ablation of SFP and CSD, top-1 (%)", "table2", "ablation",
              ("lsq", "lsq+sfp", "lsq+csd", "fpq"), label="ablation of SFP and CSD"),
    TableSpec("table3_psweep", "FPQ's perturbation probability p (CSD on), top-1 (%)", "table3", "psweep",
              ("fpq",), by_p=True, label="p sweep"),
    TableSpec("table4_cifar10", "CIFAR-10 top-1 (%)", "table4", "main", ("pact", "lsq", "lsq+", "kd", "fpq"),
              fp_row=True, dataset="cifar10", label="CIFAR-10, every method"),
    TableSpec("table5_cifar100", "CIFAR-100 top-1 (%)", "table5", "main", ("pact", "lsq", "lsq+", "kd", "fpq"),
              fp_row=True, dataset="cifar100", label="CIFAR-100, every method"),
    # The suite's own: readings of what the paper leaves open in CSD (docs/specification.md), one row each.
    TableSpec("readings", "CSD under each reading of what the paper leaves open, top-1 (%)", "", "readings", ("lsq", "lsq+sfp", "lsq+csd", "fpq"),
              label="readings of CSD"),
)

GRID_TABLES: dict[str, list[TableSpec]] = {}
for _spec in TABLES:
    GRID_TABLES.setdefault(_spec.grid, []).append(_spec)
