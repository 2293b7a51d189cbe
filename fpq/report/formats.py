"""Numbers printed for people, the same in tables, claims and figures.

Accuracy and differences of accuracy to 2 decimals, p-values to 2 significant digits, Hessian
traces and output variances to 3 significant digits (a whole number keeps all its digits: a
trace of 1549 prints as 1549, not 1.55e+03). A missing number prints as —.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

DASH = "—"
P_FLOOR = 1e-4  # below this a p-value prints as "< 0.0001": its digits say nothing a reader uses


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def acc(x) -> str:
    """Accuracy (or any top-1 in points).

    >>> acc(74.0), acc(0.33049), acc(float("nan"))
    ('74.00', '0.33', '—')
    """
    return DASH if _missing(x) else f"{x:.2f}"


def signed(x) -> str:
    """A difference of accuracies, with its sign.

    >>> signed(-0.97667), signed(1.56), signed(0.0)
    ('-0.98', '+1.56', '+0.00')
    """
    return DASH if _missing(x) else f"{x:+.2f}"


def pvalue(p) -> str:
    """Two significant digits, trailing zeros kept.

    >>> pvalue(0.26446), pvalue(0.0035670), pvalue(0.05), pvalue(1.0), pvalue(3e-7)
    ('0.26', '0.0036', '0.050', '1.0', '< 0.0001')
    """
    if _missing(p):
        return DASH
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:#.2g}"


def sig(x, digits: int = 3) -> str:
    """`digits` significant digits, never in exponent form; a whole part keeps every digit.

    >>> sig(1549.3), sig(136.6), sig(0.10043), sig(0.0080651), sig(0.00016), sig(0.0)
    ('1549', '137', '0.100', '0.00807', '0.000160', '0')
    """
    if _missing(x):
        return DASH
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def signed_sig(x, digits: int = 3) -> str:
    """
    >>> signed_sig(1016.6), signed_sig(-0.056412)
    ('+1017', '-0.0564')
    """
    return DASH if _missing(x) else ("+" if x >= 0 else "-") + sig(abs(x), digits)


def distinct(numbers) -> str:
    """A setting the runs recorded (probes, sigma): '32', or '8, 16' where runs differ; '' if none did.

    >>> distinct([32.0, 32.0, float("nan")]), distinct([16, 8]), distinct([])
    ('32', '8, 16', '')
    """
    return ", ".join(f"{v:g}" for v in sorted({float(v) for v in numbers if not math.isnan(v)}))


@dataclass(frozen=True)
class Scale:
    """How one kind of number prints: a value, a signed difference, and the unit a sentence names."""
    value: Callable[[float], str]
    diff: Callable[[float], str]
    unit: str  # " points" for accuracy; "" for a trace or a variance
    bound: float  # the best value the measure can take: 100 (% top-1), 0 (a trace or a variance)


TOP1 = Scale(acc, signed, " points", 100.0)
MEASURE = Scale(sig, signed_sig, "", 0.0)
