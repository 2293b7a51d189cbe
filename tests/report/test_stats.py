"""The statistics behind the claims, against scipy, the noncentral t and a simulation."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from fpq.report.formats import TOP1
from fpq.report.stats import (
    BELOW_PAPER,
    BELOW_ZERO,
    DOES_NOT_HOLD,
    HOLDS,
    NOT_DETECTED,
    SEEDS_CAP,
    UNDETERMINED,
    compare_seeds,
    holm,
    mde,
    paired,
    power,
    seeds_needed,
    verdict_text,
    welch,
)

A = [74.66, 75.32, 74.96, 75.10]  # four seeds of one method
B = [72.72, 74.59, 74.70, 74.01]  # and of another, same seeds


def nct_power(delta, se, df, alpha=0.05):
    """Power of the two-sided t-test written out from the noncentral t, independently of the module."""
    crit = sp.t.ppf(1 - alpha / 2, df)
    return sp.nct.sf(crit, df, delta / se) + sp.nct.cdf(-crit, df, delta / se)


def test_the_paired_test_is_scipys_ttest_rel_with_its_interval():
    c = paired(np.subtract(A, B))
    ref = sp.ttest_rel(A, B)
    ci = ref.confidence_interval(0.95)
    assert c.test == "paired" and c.n_a == c.n_b == 4
    assert c.gain == pytest.approx(np.mean(np.subtract(A, B)))
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))


def test_welch_is_scipys_unequal_variance_ttest_with_its_interval():
    a, b = [90.1, 91.3, 89.7], [88.0, 89.9, 90.5, 87.2, 89.0]
    c = welch(np.mean(a), np.std(a, ddof=1), 3, np.mean(b), np.std(b, ddof=1), 5)
    ref = sp.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.test == "Welch" and (c.n_a, c.n_b) == (3, 5)
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))


def test_same_seeds_are_paired_other_seeds_welch_and_lower_is_better_flips_the_sign():
    a, b = pd.Series(A, index=[0, 1, 2, 3]), pd.Series(B, index=[3, 2, 1, 0])  # same seeds, other order
    c = compare_seeds(a, b)
    assert c.test == "paired" and c.gain == pytest.approx(np.mean(np.subtract(A, B[::-1])))
    assert compare_seeds(b, a, higher_is_better=False).gain == pytest.approx(c.gain)
    c = compare_seeds(a.drop(3), b)  # seed 3 failed for A: paired on seeds 0-2, B's seed 3 left out
    shared = b.loc[[0, 1, 2]]
    assert c.test == "paired" and (c.n_a, c.left_out) == (3, 1)
    assert c.p_value == pytest.approx(sp.ttest_rel(A[:3], shared.to_numpy()).pvalue, rel=1e-9)
    c = compare_seeds(a.drop([2, 3]), b.drop([0, 1]))  # no seed in common: Welch
    assert c.test == "Welch" and (c.n_a, c.n_b, c.left_out) == (2, 2, 0)
    assert c.p_value == pytest.approx(sp.ttest_ind(A[:2], b.loc[[3, 2]], equal_var=False).pvalue, rel=1e-9)


def test_a_design_whose_detectable_effect_exceeds_the_scale_can_detect_no_effect():
    """The room is B's distance to the measure's bound (100 for top-1, 0 for a trace)."""
    a, b = pd.Series([60.0, 10.0, 35.0]), pd.Series([20.0, 20.0, 20.0])
    c = compare_seeds(a, b, bound=100.0)
    assert c.room == pytest.approx(80.0) and c.mde > 80.0 and c.blind
    assert verdict_text(c).startswith("not detected (this design can detect no effect: with 3 paired seeds")
    assert not compare_seeds(a, b).blind  # no bound given: no room to compare with
    tight = compare_seeds(pd.Series([21.0, 21.5, 20.5]), b, bound=100.0)
    assert not tight.blind and "detects ≥" in verdict_text(tight)
    lower = compare_seeds(pd.Series([1.0, 9.0, 5.0]), pd.Series([6.0, 6.0, 6.0]), higher_is_better=False, bound=0.0)
    assert lower.room == pytest.approx(6.0) and lower.blind  # a trace cannot fall below 0


def test_pairing_cancels_the_seed_noise_the_seeds_share():
    """A seed moves both methods by the same amount: Welch sees the spread, the pairs do not."""
    seed_effect = np.array([-1.5, 0.0, 1.5])
    a, b = pd.Series(90.6 + seed_effect + [0.0, 0.1, -0.1]), pd.Series(90.0 + seed_effect)
    assert compare_seeds(a, b).verdict == HOLDS
    assert welch(a.mean(), a.std(), 3, b.mean(), b.std(), 3).verdict == NOT_DETECTED


@pytest.mark.parametrize("se, df", [(0.5, 2), (0.2, 9), (1.3, 4.7)])
def test_the_minimum_detectable_effect_has_80_percent_power_under_the_noncentral_t(se, df):
    delta = mde(se, df)
    assert nct_power(delta, se, df) == pytest.approx(0.8, abs=1e-6)
    assert nct_power(0.98 * delta, se, df) < 0.8 < nct_power(1.02 * delta, se, df)
    assert power(delta, se, df) == pytest.approx(0.8, abs=1e-6)


def test_the_minimum_detectable_effect_is_found_4_times_in_5_in_a_simulation():
    """Pairs of 3 seeds with the differences' spread s: a true gain of the MDE is detected ~80% of the time."""
    n, s, trials = 3, 0.9, 20000
    delta = paired(np.array([-s, 0.0, s])).mde  # std of (-s, 0, s) is s
    rng = np.random.default_rng(0)
    diffs = rng.normal(delta, s, size=(trials, n))
    t = diffs.mean(axis=1) / (diffs.std(axis=1, ddof=1) / math.sqrt(n))
    rejected = np.abs(t) > sp.t.ppf(0.975, n - 1)
    assert rejected.mean() == pytest.approx(0.8, abs=0.015)


def test_welchs_minimum_detectable_effect_uses_the_welch_satterthwaite_df():
    c = welch(91.0, 0.4, 3, 90.0, 1.2, 4)
    va, vb = 0.4 ** 2 / 3, 1.2 ** 2 / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    assert nct_power(c.mde, math.sqrt(va + vb), df) == pytest.approx(0.8, abs=1e-6)


def test_seeds_needed_on_a_hand_worked_case():
    """Paired, gain = std of the differences = 1 (Cohen's d = 1): 10 pairs give 80% power, 9 do not."""
    assert nct_power(1.0, 1 / math.sqrt(9), 8) < 0.8 <= nct_power(1.0, 1 / math.sqrt(10), 9)
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(-1.0, 1.0) == 10  # a gain the other way is as hard to see
    assert seeds_needed(2.0, 1.0) == 5  # d = 2: power 0.76 at 4 pairs, 0.91 at 5
    assert nct_power(2.0, 1 / 2, 3) == pytest.approx(0.755, abs=1e-3)
    assert seeds_needed(0.01, 5.0) == SEEDS_CAP + 1
    assert seeds_needed(math.nan, 1.0) is None and seeds_needed(1.0, math.nan) is None
    # Welch, n per method: the two spreads add up (1 and 1 -> as a paired spread of sqrt(2))
    n = seeds_needed(1.0, 1.0, 1.0)
    assert nct_power(1.0, math.sqrt(2 / n), 2 * (n - 1)) >= 0.8 > nct_power(1.0, math.sqrt(2 / (n - 1)), 2 * (n - 2))


def test_verdicts_say_what_they_mean():
    holds = paired([0.5, 0.6, 0.7])
    assert holds.verdict == HOLDS and holds.low > 0 and verdict_text(holds) == "holds"
    worse = paired([-0.5, -0.6, -0.7])
    assert (worse.verdict, worse.reason) == (DOES_NOT_HOLD, BELOW_ZERO)
    assert verdict_text(worse) == "does not hold (CI below 0)"
    # the CI spans 0 but ends below the paper's gain: a gain as large as the paper's is excluded
    short = paired([-0.9, 0.1, 0.6], paper_gain=2.5)
    assert short.low < 0 < short.high < 2.5 and (short.verdict, short.reason) == (DOES_NOT_HOLD, BELOW_PAPER)
    assert verdict_text(short) == "does not hold (CI below the paper's +2.50)"
    unseen = paired([-0.9, 0.1, 0.6], paper_gain=1.0)
    assert unseen.verdict == NOT_DETECTED
    assert verdict_text(unseen) == f"not detected (this design detects ≥ {unseen.mde:.2f} points)"
    assert paired([1.0]).verdict == UNDETERMINED and verdict_text(paired([1.0])) == "undetermined (fewer than 2 seeds)"
    assert welch(91.0, 0.3, 3, 90.0, math.nan, 1).verdict == UNDETERMINED


def test_no_verdict_says_within_seed_noise():
    """The old verdict read as 'no effect' where the design could not have seen one."""
    cases = [paired(d, paper_gain=g) for d in ([0.1, -0.2, 0.15], [0.5, 0.6, 0.7], [-1, -2, -1.5], [3.0])
             for g in (math.nan, 0.3, 5.0)]
    assert {c.verdict for c in cases} == {HOLDS, DOES_NOT_HOLD, NOT_DETECTED, UNDETERMINED}
    assert not [verdict_text(c, TOP1) for c in cases if "seed noise" in verdict_text(c, TOP1)]


def test_holm_on_a_hand_worked_case():
    # sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, then 0.03 > 0.05/2 stops (0.04 is not tested)
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm([0.02, 0.02]) == [True, True]  # 0.02 <= 0.025, then 0.02 <= 0.05
    assert holm([]) == []


def test_power_far_in_the_tail_is_a_number():
    """scipy's nct.cdf gives NaN far below a large noncentrality; the power must still be ~1, or the
    seeds-needed search reads every n as too few (it printed '> 1000' for a 31-seed case)."""
    assert power(16.07 * 0.2, 0.2, 2.0) == pytest.approx(1.0, abs=1e-4)
    sd = float(np.std([0.5, -0.33, 0.55], ddof=1))  # the reference run's FPQ - LSQ+CSD, with Table 2's +0.26
    assert seeds_needed(0.26, sd) == 31
    assert nct_power(0.26, sd / math.sqrt(31), 30) >= 0.8 > nct_power(0.26, sd / math.sqrt(30), 29)
