"""The run index of a workflow config: its runs with their cells, and the cells each grid asks for.

The workflow writes it once per config (`<results>/index.json`, rule `index_runs`); tables,
claims and figures read only the runs it lists, so runs of another config or of an earlier grid
that happen to lie in the same folder never leak into the means, and expected runs without a
result are listed as missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fpq.errors import DataError
from fpq.run.cell import Cell

FORMAT = 1


@dataclass(frozen=True)
class IndexedRun:
    run_id: str
    cell: Cell
    stage: str  # "teacher" or "qat"
    teacher: str | None  # run id of its FP teacher
    hessian: bool  # gets the final Hessian measurement
    variance: bool  # gets the output-variance probe


@dataclass(frozen=True)
class GridEntry:
    grid: str
    cell: Cell  # as the grid asks for it (e.g. FPQ at p = 0)
    run_id: str  # the run that answers it (e.g. the LSQ+CSD run)


@dataclass(frozen=True)
class RunIndex:
    name: str
    main_p: float
    runs: dict[str, IndexedRun]
    entries: list[GridEntry]
    main_readings: dict[str, str] = field(default_factory=dict)  # method -> the config's reading of it ('' omitted)

    def main_reading(self, method: str) -> str:
        """The reading the config's `quant` gives `method` (its main tables' and claims' cells)."""
        return self.main_readings.get(method, "")

    @classmethod
    def from_plan(cls, plan) -> "RunIndex":
        hessian, variance = set(plan.hessian_ids), set(plan.variance_ids)
        runs = {rid: IndexedRun(rid, run.cell, "teacher" if run.teacher_id is None else "qat", run.teacher_id,
                                rid in hessian, rid in variance) for rid, run in plan.runs.items()}
        entries = [GridEntry(grid, cell, rid) for grid, pairs in plan.grids.items() for cell, rid in pairs]
        return cls(plan.name, plan.main_p, runs, entries, dict(plan.main_readings))

    def grid(self, name: str) -> list[GridEntry]:
        return [e for e in self.entries if e.grid == name]

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "name": self.name, "main_p": self.main_p,
            **({"main_readings": self.main_readings} if self.main_readings else {}),
            "runs": {rid: {"cell": r.cell.as_dict(), "stage": r.stage, "teacher": r.teacher, "hessian": r.hessian,
                           "variance": r.variance} for rid, r in self.runs.items()},
            "grids": {g: [{"cell": e.cell.as_dict(), "run_id": e.run_id} for e in self.grid(g)]
                      for g in dict.fromkeys(e.grid for e in self.entries)},
        }, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str = "run index") -> "RunIndex":
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            runs = {rid: IndexedRun(rid, Cell.from_dict(r["cell"]), r["stage"], r["teacher"], r["hessian"],
                                    r["variance"]) for rid, r in data["runs"].items()}
            entries = [GridEntry(g, Cell.from_dict(e["cell"]), e["run_id"]) for g, items in data["grids"].items()
                       for e in items]
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{origin} is not an fpq run index ({type(err).__name__}: {err})") from None
        stray = sorted({e.run_id for e in entries} - set(runs))
        if stray:
            raise DataError(f"{origin}: grid entries name runs it does not list: {stray[:5]}")
        return cls(data["name"], float(data["main_p"]), runs, entries, dict(data.get("main_readings", {})))


def read_index(path: str | Path) -> RunIndex:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"run index {path} does not exist (the workflow writes it: rule index_runs, "
                        f"or `fpq index --configfile CONFIG`)")
    return RunIndex.from_json(path.read_text(), str(path))
