"""Is A better than B over seeds, and how small a gain could this design have seen?

A comparison is *paired* on the seeds both methods have results for: runs of one seed share the
teacher (or the one `teacher_seed` teacher), the data order and augmentation and the calibration
images, so the per-seed differences A_s - B_s cancel part of the seed noise; the test is the t-test
on those differences (df = n - 1). A seed only one side has (the other's run failed or is missing)
is left out of the pairs, and the comparison says how many were. Only when no seed is shared is it
Welch's t-test (Welch-Satterthwaite df, standard error sqrt(s_a²/n_a + s_b²/n_b)). Either way a comparison gives the mean gain of A in
the claimed direction (A - B, or B - A where lower is better), its 95% confidence interval, the
two-sided p-value, and the *minimum detectable effect*: the smallest true gain the same test finds
with 80% power at the 5% level for this n and spread (noncentral t, the spread taken as known).
Where the paper gives a gain for the same comparison and cell, also the seeds this spread would
need to find it with 80% power. A measure is bounded (top-1 at 100%, a trace or a variance at 0), so a
gain can be no larger than the room B leaves to that bound; where the minimum detectable effect is
at least that room, the design can detect no effect at all, and it says so instead of a number.

Verdicts on the directional claim "A beats B", decided on the 95% CI of the gain:
- holds: the CI lies above 0 (same as p < 0.05 with a positive gain). The gain's size may differ
  from the paper's; the paper's gain stands beside it.
- does not hold: the CI lies below 0 (A is worse), or below the paper's positive gain for this
  cell (the data exclude a gain as large as the paper's).
- not detected: neither; the minimum detectable effect says which gains this design could see.
- undetermined: fewer than 2 seeds on a side, or fewer than 2 shared seeds when paired (the gain
  is then the difference of the means over every seed); or no spread at all (the same per-seed
  difference on every seed, a tie on every seed above all): a t-test needs a spread, and a zero
  one would print p = 1.0 and a CI of one point as if they were results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd
from scipy import optimize, stats

from fpq.report.formats import DASH, TOP1, Scale

ALPHA = 0.05  # two-sided level of the test, so the CI is 95%
POWER = 0.8  # of the minimum detectable effect and of the seeds needed
SEEDS_CAP = 1000  # seeds needed beyond this print as "> 1000"

HOLDS, DOES_NOT_HOLD, NOT_DETECTED, UNDETERMINED = "holds", "does not hold", "not detected", "undetermined"
BELOW_ZERO, BELOW_PAPER = "below zero", "below the paper's gain"  # why a claim does not hold
NO_SPREAD = "no spread"  # why a comparison with seeds enough is still undetermined


@dataclass(frozen=True)
class Comparison:
    test: str  # "paired", "Welch", or "" when undetermined
    n_a: int
    n_b: int
    gain: float  # mean gain of A over B in the claimed direction
    low: float  # 95% CI of the gain
    high: float
    p_value: float  # two-sided
    mde: float  # minimum detectable effect at 80% power
    paper_gain: float  # the paper's gain for this comparison and cell; NaN where it has none
    seeds_needed: int | None  # seeds for the paper's gain at this spread; None: not computable
    verdict: str  # HOLDS, DOES_NOT_HOLD, NOT_DETECTED or UNDETERMINED
    reason: str = ""  # why it does not hold: BELOW_ZERO or BELOW_PAPER
    spread: tuple[float, ...] = ()  # paired: (std of the differences,); Welch: (std of A, std of B)
    left_out: int = 0  # seeds of one side only, left out of the pairs
    room: float = math.nan  # the largest gain the measure allows here (NaN: not given)

    @property
    def blind(self) -> bool:
        """The design can detect no effect: its minimum detectable effect is at least the room."""
        return not math.isnan(self.room) and self.mde >= self.room


def power(delta: float, se: float, df: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided t-test at level `alpha` when the true gain is `delta`.

    >>> round(power(0.0, 1.0, 10), 3)  # no gain: the test rejects at its level
    0.05
    """
    if se == 0:
        return 1.0 if delta else alpha
    crit, nc = stats.t.ppf(1 - alpha / 2, df), delta / se
    # P(T < -crit | nc) as P(T > crit | -nc): scipy's nct.cdf far in the lower tail can give NaN
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def mde(se: float, df: float, alpha: float = ALPHA, target: float = POWER) -> float:
    """The smallest gain found with power `target`: solves power(delta) = target (brentq)."""
    if math.isnan(se) or math.isnan(df):
        return math.nan
    if se == 0:
        return 0.0
    high = se * (stats.t.ppf(1 - alpha / 2, df) + 1.0)
    while power(high, se, df, alpha) < target:
        high *= 2
    return float(optimize.brentq(lambda d: power(d, se, df, alpha) - target, 0.0, high, xtol=1e-10 * se))


def welch_df(va: float, vb: float, n_a: int, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of the variances of the means va = s_a²/n_a, vb."""
    if va + vb == 0:
        return float(n_a + n_b - 2)
    return (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))


def _smallest_n(detects) -> int | None:
    """The smallest n >= 2 with detects(n) true (monotone in n), or SEEDS_CAP + 1 beyond the cap."""
    if not detects(SEEDS_CAP):
        return SEEDS_CAP + 1
    low, high = 1, 2  # detects(low) false by convention, find a high that detects
    while not detects(high):
        low, high = high, high * 2
    high = min(high, SEEDS_CAP)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if detects(mid) else (mid, high)
    return high


def seeds_needed(gain: float, sd_a: float, sd_b: float | None = None) -> int | None:
    """Seeds for 80% power to find `gain` at this spread: paired (sd_a, the std of the per-seed
    differences; df = n - 1) or, with sd_b, Welch (n seeds per method). None without a gain or a
    spread."""
    if gain == 0 or any(s is None or math.isnan(s) for s in (gain, sd_a)) or (
            sd_b is not None and math.isnan(sd_b)):
        return None
    if sd_b is None:
        return _smallest_n(lambda n: power(abs(gain), sd_a / math.sqrt(n), n - 1) >= POWER)

    def detects(n: int) -> bool:
        va, vb = sd_a ** 2 / n, sd_b ** 2 / n
        return power(abs(gain), math.sqrt(va + vb), welch_df(va, vb, n, n)) >= POWER
    return _smallest_n(detects)


def _verdict(low: float, high: float, paper_gain: float) -> tuple[str, str]:
    if low > 0:
        return HOLDS, ""
    if high < 0:
        return DOES_NOT_HOLD, BELOW_ZERO
    if paper_gain > 0 and high < paper_gain:
        return DOES_NOT_HOLD, BELOW_PAPER
    return NOT_DETECTED, ""


def _from_moments(test: str, n_a: int, n_b: int, gain: float, se: float, df: float, paper_gain: float,
                  needed: int | None, spread: tuple[float, ...]) -> Comparison:
    if se == 0:  # every seed gives the same difference: no spread, no test
        nan = math.nan
        return Comparison(test, n_a, n_b, gain, nan, nan, nan, nan, paper_gain, None, UNDETERMINED, NO_SPREAD, spread)
    p_value = float(2 * stats.t.sf(abs(gain) / se, df))
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    low, high = gain - half, gain + half
    verdict, reason = _verdict(low, high, paper_gain)
    return Comparison(test, n_a, n_b, gain, low, high, p_value, mde(se, df), paper_gain, needed, verdict, reason,
                      spread)


def undetermined(n_a: int, n_b: int, gain: float, paper_gain: float = math.nan) -> Comparison:
    nan = math.nan
    return Comparison("", n_a, n_b, gain, nan, nan, nan, nan, paper_gain, None, UNDETERMINED)


def paired(diffs, paper_gain: float = math.nan) -> Comparison:
    """The t-test on per-seed differences (already in the claimed direction)."""
    d = pd.Series(diffs, dtype=float)
    n = len(d)
    if n < 2:
        return undetermined(n, n, float(d.mean()) if n else math.nan, paper_gain)
    sd = float(d.std(ddof=1))
    return _from_moments("paired", n, n, float(d.mean()), sd / math.sqrt(n), n - 1, paper_gain,
                         seeds_needed(paper_gain, sd), (sd,))


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int, higher_is_better: bool = True,
          paper_gain: float = math.nan) -> Comparison:
    """Welch's t-test from each method's mean, std (ddof=1) and number of seeds."""
    gain = mean_a - mean_b if higher_is_better else mean_b - mean_a
    if n_a < 2 or n_b < 2:
        return undetermined(n_a, n_b, gain, paper_gain)
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    return _from_moments("Welch", n_a, n_b, gain, math.sqrt(va + vb), welch_df(va, vb, n_a, n_b), paper_gain,
                         seeds_needed(paper_gain, sd_a, sd_b), (sd_a, sd_b))


def pair_gains(a: pd.Series, b: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """A's gain over B on each unit (seed, or (block, seed)) both have, in A's order: what a paired
    comparison tests.

    >>> pair_gains(pd.Series([3.0, 5.0, 7.0], index=[0, 1, 2]), pd.Series([1.0, 4.0], index=[1, 0])).to_dict()
    {0: -1.0, 1: 4.0}
    """
    in_b = set(b.index)
    shared = [u for u in a.index if u in in_b]
    return (a.loc[shared] - b.loc[shared]) if higher_is_better else (b.loc[shared] - a.loc[shared])


def compare_seeds(a: pd.Series, b: pd.Series, higher_is_better: bool = True, paper_gain: float = math.nan,
                  bound: float = math.nan) -> Comparison:
    """A against B from their values by seed (index = seed): paired on the seeds both have (the
    others left out and counted), Welch's only when they share none. `bound` is the best value the
    measure can take (100 for top-1, 0 for a trace): the gain's room is B's distance to it."""
    a, b = a.dropna(), b.dropna()
    diffs = pair_gains(a, b, higher_is_better)
    if len(diffs):
        c = replace(paired(diffs, paper_gain), left_out=len(a) + len(b) - 2 * len(diffs))
        if c.verdict == UNDETERMINED and c.reason != NO_SPREAD:  # one pair, no test: the means of every seed
            c = replace(c, gain=float(a.mean() - b.mean()) if higher_is_better else float(b.mean() - a.mean()))
        reference = b.loc[diffs.index]
    else:
        sd = lambda s: float(s.std(ddof=1)) if len(s) >= 2 else math.nan  # noqa: E731
        c = welch(float(a.mean()), sd(a), len(a), float(b.mean()), sd(b), len(b), higher_is_better, paper_gain)
        reference = b
    return replace(c, room=abs(bound - float(reference.mean())) if len(reference) else math.nan)


def holm(p_values: list[float], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level `alpha`.

    >>> holm([0.01, 0.04, 0.03, 0.005])  # 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop
    [True, False, False, True]
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    reject = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        reject[i] = True
    return reject


def _seeds(c: Comparison) -> str:
    """'2 paired seeds' / '2 and 3 seeds (Welch)', what a sentence about the design names."""
    return f"{c.n_a} paired seed{'s' if c.n_a != 1 else ''}" if c.test == "paired" else f"{c.n_a} and {c.n_b} seeds"


def _spread(c: Comparison, scale: Scale) -> str:
    if c.test == "paired":
        return f"a spread of {scale.value(c.spread[0])}{scale.unit} (std of the per-seed differences)"
    return f"spreads of {scale.value(c.spread[0])} and {scale.value(c.spread[1])}{scale.unit} (std over seeds)"


def no_effect_text(c: Comparison, scale: Scale = TOP1) -> str:
    """Why a design sees nothing: its seeds and spread, and the most the measure allows.

    >>> no_effect_text(replace(paired([9.0, -9.0, 1.0]), room=20.0))
    'this design can detect no effect: with 3 paired seeds and a spread of 9.02 points (std of the per-seed differences), even the largest gain the measure allows here (20.00 points) would not show 4 times in 5'
    """
    return (f"this design can detect no effect: with {_seeds(c)} and {_spread(c, scale)}, even the largest gain "
            f"the measure allows here ({scale.value(c.room)}{scale.unit}) would not show 4 times in 5")


DETECTS = "This design detects"  # the column of the minimum detectable effect; a cell ends the sentence


def detects_text(c: Comparison, scale: Scale = TOP1) -> str:
    """The DETECTS column, so that a row reads "This design detects ≥ 2.83" or "... no gain at all"
    (where none is possible); — where there is no test.

    >>> detects_text(paired([0.5, -0.5, 1.0])), detects_text(paired([1.0, 1.0]))
    ('≥ 2.49', '—')
    """
    if math.isnan(c.mde):
        return DASH
    return "no gain at all" if c.blind else f"≥ {scale.value(c.mde)}"


def no_spread_text(c: Comparison, scale: Scale = TOP1) -> str:
    """
    >>> no_spread_text(paired([0.0, 0.0])), no_spread_text(paired([1.5, 1.5, 1.5]))
    ('identical on every seed: no spread, no test', 'the same gain on every seed (+1.50 points): no spread, no test')
    """
    if c.gain == 0:
        return "identical on every seed: no spread, no test"
    return f"the same gain on every seed ({scale.diff(c.gain)}{scale.unit}): no spread, no test"


def verdict_text(c: Comparison, scale: Scale = TOP1) -> str:
    """The verdict as a reader sees it, the minimum detectable effect in it when nothing was found.

    >>> verdict_text(paired([0.5, -0.5, 1.0]))
    'not detected (this design detects ≥ 2.49 points)'
    """
    if c.verdict == DOES_NOT_HOLD:
        why = "0" if c.reason == BELOW_ZERO else f"the paper's {scale.diff(c.paper_gain)}"
        return f"does not hold (CI below {why})"
    if c.verdict == NOT_DETECTED:
        if c.blind:
            return f"not detected ({no_effect_text(c, scale)})"
        return f"not detected (this design detects ≥ {scale.value(c.mde)}{scale.unit})"
    if c.verdict == UNDETERMINED:
        if c.reason == NO_SPREAD:
            return f"undetermined ({no_spread_text(c, scale)})"
        if c.left_out:
            return f"undetermined ({c.n_a} shared seed{'s' if c.n_a != 1 else ''}, fewer than 2 pairs)"
        return "undetermined (fewer than 2 seeds)"
    return HOLDS
