"""Flags on a table's row whose number is not the result it looks like.

Three cases a stamp of sizes ("500 train images, 1 QAT epoch") leaves to the reader's arithmetic:
- a run at chance level: its top-1 is near the 100/classes % of guessing, so it says the run
  learned (almost) nothing, not how good its method is (config/ci.yaml's runs, 14% and 9% on CIFAR-10);
- a teacher whose seeds differ by more than half their mean: the QAT runs it teaches start from
  unlike models, so their seeds differ for a reason no method explains;
- a pair (two methods' runs of one seed) that trained on different step paths (CUDA graph or
  eager, Triton kernels or torch, precision): it compares code paths as well as methods.
Each flag is a marker in the table's cell and one footnote under the table.
"""
from __future__ import annotations

from fpq.config import DATASETS

CHANCE_FACTOR = 1.5  # top-1 up to 1.5 x the chance rate counts as chance level (15% on CIFAR-10)
CHANCE, SPREAD, PATH = "†", "‡", "§"
NOTES = {
    CHANCE: (f"At chance level: a seed of this row has top-1 at most {CHANCE_FACTOR:g} × the 100/classes % of "
             "guessing (15% on CIFAR-10, 1.5% on CIFAR-100): the run learned (almost) nothing, and its number "
             "says nothing of its method."),
    SPREAD: ("The teacher's seeds differ by more than half their mean (max − min > mean / 2): the QAT runs it "
             "teaches start from unlike models."),
    PATH: ("Step paths differ within a pair: a seed of this row was trained on another step path (CUDA graph or "
           "eager, kernels, precision) than the same seed of another row of its setting, so that pair compares "
           "code paths as well as methods."),
}


def chance_level(top1: float, dataset: str) -> bool:
    """
    >>> chance_level(14.33, "cifar10"), chance_level(9.0, "cifar10"), chance_level(20.0, "cifar10")
    (True, True, False)
    >>> chance_level(1.2, "cifar100"), chance_level(14.33, "cifar100")
    (True, False)
    """
    return top1 <= CHANCE_FACTOR * 100.0 / DATASETS[dataset]


def spread_apart(values: list[float]) -> bool:
    """Seeds whose range exceeds half their mean.

    >>> spread_apart([80.0, 82.0, 79.5]), spread_apart([14.0, 40.0]), spread_apart([50.0])
    (False, True, False)
    """
    if len(values) < 2:
        return False
    mean = sum(values) / len(values)
    return max(values) - min(values) > mean / 2


def row_flags(values: list[float], dataset: str, teacher: bool) -> str:
    """The markers of a row from its seeds' top-1: CHANCE, SPREAD (teachers only), both or ''.

    >>> row_flags([14.33, 30.0], "cifar10", teacher=True), row_flags([9.0, 9.0], "cifar10", teacher=False)
    ('†‡', '†')
    """
    chance = CHANCE if any(chance_level(v, dataset) for v in values) else ""
    return chance + (SPREAD if teacher and spread_apart(values) else "")


def footnotes(flags: list[str], mismatches: tuple[str, ...] = ()) -> list[str]:
    """One line per marker used in a table's rows, in the order of NOTES; the path marker's line
    names each mismatched pair and the path either side took."""
    used = set("".join(flags))
    pairs = {PATH: f" Here: {', '.join(mismatches)}."} if mismatches else {}
    return [f"{mark} {text}{pairs.get(mark, '')}" for mark, text in NOTES.items() if mark in used]


def chance_mark(dataset: str, *values) -> str:
    """' †' after a claim's cell label where a seed of either side is at chance level, else ''.

    >>> chance_mark("cifar10", [14.33, 30.0], [80.0]), chance_mark("cifar10", [80.0], [81.0])
    (' †', '')
    """
    return f" {CHANCE}" if any(chance_level(float(v), dataset) for vs in values for v in vs) else ""


def path_mark(mismatches: list[str]) -> str:
    """' §' after a claim's cell label where a shared seed's two runs took different step paths."""
    return f" {PATH}" if mismatches else ""


def claim_footnote(rows: list[list[str]], mismatches: tuple[str, ...] = ()) -> list[str]:
    """The footnotes under a claim's table whose rows carry a mark (in the first column): chance level,
    and which step path each side of a mismatched pair took."""
    lines = [f"{CHANCE} {NOTES[CHANCE]}"] if any(CHANCE in row[0] for row in rows) else []
    if mismatches:
        lines.append(f"{PATH} Step paths differ within a pair, so it compares code paths as well as methods: "
                     + ", ".join(mismatches) + ".")
    return lines + [""] if lines else []
