"""The kernels' launch parameters: tile sizes and warps per program. A speed choice, not a formula.

Defaults are the sizes the kernels were written with; `FPQ_KERNEL_TUNING` (e.g.
`fq_tile=8192,fq_warps=8,csd_block_hw=128`) sets others, one of `CANDIDATES` each, for the
process: `bench/kernel_tiles.py` times every candidate on a GPU and prints the pick as that line.
Forward values do not depend on the choice (elementwise, or sums the loss reads whole); the
step's and CSD's sums are added in tiles, so another tile adds them in another order (float
rounding, as any speed key).
"""
from __future__ import annotations

import functools
import os

ENV = "FPQ_KERNEL_TUNING"
DEFAULT = {"fq_tile": 4096, "fq_warps": 4, "csd_block_c": 32, "csd_block_hw": 64, "csd_warps": 4}
CANDIDATES = {"fq_tile": (1024, 2048, 4096, 8192), "fq_warps": (2, 4, 8), "csd_block_c": (16, 32, 64),
              "csd_block_hw": (32, 64, 128), "csd_warps": (2, 4, 8)}


@functools.lru_cache(maxsize=8)
def parse(text: str) -> dict[str, int]:
    """'fq_tile=8192,fq_warps=8' -> DEFAULT with those two set; ValueError naming a bad part.

    >>> parse("fq_tile=8192")["fq_tile"], parse("")["csd_warps"]
    (8192, 4)
    """
    out = dict(DEFAULT)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in CANDIDATES:
            raise ValueError(f"{ENV}: {key!r} is not a launch parameter (one of {', '.join(CANDIDATES)})")
        if not value.isdigit() or int(value) not in CANDIDATES[key]:
            raise ValueError(f"{ENV}: {key}={value} is not one of {CANDIDATES[key]}")
        out[key] = int(value)
    return out


def current() -> dict[str, int]:
    """The parameters in force: DEFAULT, with what `FPQ_KERNEL_TUNING` sets (parsed once per value;
    callers read the dict, never change it)."""
    return parse(os.environ.get(ENV, ""))


def warps(elements: int, wanted: int) -> int:
    """`wanted` warps a program, halved while its tile gives a thread fewer than 4 elements (a small
    map's CSD tile, a short weight row): one element a thread would be loaded one at a time.

    >>> warps(4096, 4), warps(128, 4), warps(64, 4)
    (4, 1, 1)
    """
    while wanted > 1 and elements < wanted * 32 * 4:
        wanted //= 2
    return wanted


def spell(params: dict[str, int]) -> str:
    """The `FPQ_KERNEL_TUNING` value of `params`: only what differs from DEFAULT ('' for none).

    >>> spell({**DEFAULT, "fq_warps": 8})
    'fq_warps=8'
    """
    return ",".join(f"{k}={v}" for k, v in params.items() if DEFAULT.get(k) != v)
