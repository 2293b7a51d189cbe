"""Claims from synthetic runs whose per-seed numbers are chosen so the statistics are known."""
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sp

from fpq.report.claims import claims_markdown
from fpq.report.paper import load_reference
from fpq.report.results import collect
from fpq.report.stats import paired, seeds_needed
from tests.fake_results import workflow_config, write_results

REFERENCE = load_reference(Path(__file__).resolve().parents[2] / "config" / "reference_tables.csv")
SEED_EFFECT = [-1.5, 0.0, 1.5]  # what a seed does to every method alike (teacher, data order, calibration)
OVER_LSQ = {"lsq": [0.0, 0.0, 0.0], "lsq+sfp": [0.6, -0.6, 0.3], "lsq+csd": [0.9, 1.0, 1.0], "fpq": [0.7, 1.0, 1.3],
            "fp": [5.0, 5.0, 5.0]}
GRIDS = {"main": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w4a4", "w2a4", "w2a2"],
                  "methods": ["lsq", "fpq"]},
         "ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"],
                      "methods": ["lsq", "lsq+sfp", "lsq+csd", "fpq"]}}


def top1(cell):
    return 90.0 + SEED_EFFECT[cell.seed] + OVER_LSQ[cell.method][cell.seed]


def claims_of(tmp_path, accuracy=top1, **results) -> str:
    config = workflow_config(tmp_path / "results", GRIDS)
    index = write_results(config, accuracy, **results)
    return claims_markdown(collect(tmp_path / "results", index), REFERENCE)


def section(md: str, i: int) -> str:
    return md.split(f"## {i}.")[1].split(f"## {i + 1}.")[0] if f"## {i + 1}." in md else md.split(f"## {i}.")[1]


def cells(md: str, label: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()
            if line.startswith(f"| {label} ")]


def test_a_comparison_is_paired_by_seed_with_its_interval_the_papers_gain_and_the_seeds_it_needs(tmp_path):
    md = claims_of(tmp_path)
    (row,) = cells(section(md, 1), "CIFAR-10 ResNet-18 W2A4")
    lsq = [90.0 + e for e in SEED_EFFECT]
    fpq = [x + gain for x, gain in zip(lsq, OVER_LSQ["fpq"])]
    ci = sp.ttest_rel(fpq, lsq).confidence_interval()
    sd = float(np.std(np.subtract(fpq, lsq), ddof=1))
    assert row[3:8] == ["+1.00", f"[{ci.low:+.2f}, {ci.high:+.2f}]", f"{sp.ttest_rel(fpq, lsq).pvalue:#.2g}",
                        "paired, n=3", f"≥ {paired(np.subtract(fpq, lsq)).mde:.2f}"]
    assert row[8:] == ["+1.56", f"n ≥ {seeds_needed(1.56, sd)}", "holds"]  # Table 2: 89.92 - 88.36
    (w4a4,) = cells(section(md, 1), "CIFAR-10 ResNet-18 W4A4")
    assert w4a4[8] == "+3.47"  # no W4A4 in Table 2: Table 4's 90.16 - 86.69


def test_a_failed_seed_leaves_the_comparison_paired_on_the_shared_seeds_and_says_how_many(tmp_path):
    failing = lambda c: None if c.method == "fpq" and c.seed == 2 else top1(c)  # noqa: E731
    (row,) = cells(section(claims_of(tmp_path, failing), 1), "CIFAR-10 ResNet-18 W2A4")
    assert row[6] == "paired, n=2 (1 seed of one side left out)"
    assert row[1] == "90.10 ± 1.27 (n=2)"
    lsq = [90.0 + e for e in SEED_EFFECT[:2]]
    fpq = [x + g for x, g in zip(lsq, OVER_LSQ["fpq"][:2])]
    assert row[3] == f"{np.mean(np.subtract(fpq, lsq)):+.2f}"  # the gain over the shared seeds 0 and 1
    assert row[7] == f"≥ {paired(np.subtract(fpq, lsq)).mde:.2f}"


def test_no_shared_seed_makes_the_comparison_welch(tmp_path):
    """FPQ has only seed 2, LSQ only seeds 0 and 1: nothing to pair, so Welch (undetermined at n = 1)."""
    only = lambda c: None if (c.method == "fpq") == (c.seed != 2) and c.method in ("fpq", "lsq") else top1(c)  # noqa: E731
    (row,) = cells(section(claims_of(tmp_path, only), 1), "CIFAR-10 ResNet-18 W2A4")
    assert row[6] == "—" and row[-1] == "undetermined (fewer than 2 seeds)"


def test_a_design_that_can_detect_nothing_says_so_instead_of_an_impossible_number(tmp_path):
    """Top-1 near 20% with per-seed differences of +-40 points: the smallest gain 3 paired seeds find is
    beyond the 80 points top-1 can still rise, so no number beyond the scale is printed."""
    swing = {"lsq": [0.0, 0.0, 0.0], "fpq": [40.0, -40.0, 5.0]}
    wild = lambda c: 20.0 + swing.get(c.method, [0.0] * 3)[c.seed] + (0 if c.method in swing else 1)  # noqa: E731
    (row,) = cells(section(claims_of(tmp_path, wild), 1), "CIFAR-10 ResNet-18 W2A4")
    assert row[7] == "no gain at all"
    assert row[-1].startswith("not detected (this design can detect no effect: with 3 paired seeds and a spread "
                              "of 40.10 points (std of the per-seed differences)")
    assert "(80.00 points)" in row[-1]
    assert paired(np.array(swing["fpq"])).mde > 80.0  # the number the row no longer prints
    numbers = [float(x) for x in re.findall(r"(?<![\w.])\d+\.\d\d", row[-1])]
    assert max(numbers) <= 100.0


def test_the_detects_column_and_its_cells_read_as_a_sentence(tmp_path):
    md = claims_of(tmp_path)
    header = [c.strip() for c in section(md, 1).splitlines()[4].strip("|").split("|")]
    (row,) = cells(section(md, 1), "CIFAR-10 ResNet-18 W2A4")
    said = f"{header[7]} {row[7]}"
    assert re.fullmatch(r"This design detects ≥ \d+\.\d\d", said), said


def test_methods_tied_on_every_seed_give_no_test_and_say_so(tmp_path):
    """LSQ+SFP equal to LSQ on every seed (as the CI config's chance-level runs were): no spread, so no
    p = 1.0, no CI of one point, no "detects ≥ 0.00"; the row says why, the roll-up counts it undetermined."""
    def tied(c):
        return 90.0 + SEED_EFFECT[c.seed] + (0.0 if c.method == "lsq+sfp" else OVER_LSQ[c.method][c.seed])

    ablation = section(claims_of(tmp_path, tied), 7)
    rows = {r[1]: r for r in cells(ablation, "CIFAR-10 ResNet-18 W2A4")}
    step = rows["LSQ+SFP − LSQ"]
    assert step[2] == "+0.00" and step[3:6] == ["—", "—", "paired, n=3"] and step[6] == "—"
    assert step[-1] == "undetermined (identical on every seed: no spread, no test)"
    assert rows["the whole order"][-1] == "undetermined (a step has no spread: no test)"
    assert "p 1.0" not in ablation and "| 1.0 " not in ablation and "0.00" not in step[6]
    assert re.search(r"Across cells: holds in 0 of 1 cell, 0 after Holm's correction \(1 undetermined\)", ablation)


def test_a_cell_at_chance_level_is_flagged_in_the_claims(tmp_path):
    """The CI config's case: every run near the 10% of guessing on CIFAR-10. Each claim row of the cell
    carries the chance mark and the claim a footnote saying what it means; a healthy cell neither."""
    md = claims_of(tmp_path, lambda c: top1(c) - 78.0)  # 10.5-18 %: the lower seeds at chance
    (row,) = cells(section(md, 1), "CIFAR-10 ResNet-18 W2A4")
    assert row[0] == "CIFAR-10 ResNet-18 W2A4 †"
    assert all(r[0].endswith("†") for r in cells(section(md, 7), "CIFAR-10 ResNet-18 W2A4")[:-1])
    assert section(md, 1).count("\n† At chance level: a seed of this row has top-1 at most 1.5 ×") == 1
    healthy = claims_of(tmp_path / "healthy")
    assert "†" not in healthy and "chance" not in healthy


def test_the_rollup_counts_cells_after_holms_correction_and_reads_grammatically(tmp_path):
    md = claims_of(tmp_path)
    # each cell: p = 0.029 < 0.05, but Holm over 3 cells asks 0.05 / 3 of the smallest
    assert re.search(r"\| FPQ beats LSQ \(Tables 2, 4, 5\) +\| holds in 3 of 3 cells, 0 after Holm's correction +\|", md)
    assert "Ablation order LSQ < LSQ+SFP < LSQ+CSD < FPQ (Table 2)" in md
    assert re.search(r"Ablation order .*\| holds in 0 of 1 cell, 0 after Holm's correction \(1 not detected\)", md)
    assert "1 cells" not in md


def test_the_ablation_order_is_not_detected_when_a_step_is_not_and_says_what_it_could_see(tmp_path):
    ablation = section(claims_of(tmp_path), 7)
    steps = {"LSQ+SFP − LSQ": "not detected", "LSQ+CSD − LSQ": "holds", "LSQ+CSD − LSQ+SFP": "not detected",
             "FPQ − LSQ+SFP": "not detected", "FPQ − LSQ+CSD": "not detected"}
    rows = cells(ablation, "CIFAR-10 ResNet-18 W2A4")
    assert {r[1]: r[-1].split(" (")[0] for r in rows[:-1]} == steps
    unseen = [paired(np.subtract(OVER_LSQ[a], OVER_LSQ[b])).mde
              for a, b in (("lsq+sfp", "lsq"), ("lsq+csd", "lsq+sfp"), ("fpq", "lsq+sfp"), ("fpq", "lsq+csd"))]
    assert rows[-1][1] == "the whole order"
    assert rows[-1][-1] == f"not detected (this design detects ≥ {max(unseen):.2f} points)"


def test_cells_carry_the_tables_labels_and_numbers_are_printed_for_people(tmp_path):
    md = claims_of(tmp_path, trace=lambda c: 1549.3 + 10 * c.seed if c.method == "fpq" else 2565.1 + 40 * c.seed,
                   variance=lambda c: {"fp": 0.04, "lsq": 0.1568, "fpq": 0.10043}[c.method] + 0.001 * c.seed)
    assert "CIFAR-10 ResNet-18 W2A4" in md and "cifar10 resnet18" not in md
    checked = 0
    for i in range(1, 9):  # accuracy and its differences to 2 decimals (p-values have their own digits)
        text = section(md, i)
        p_column = text.split("p-value")[0].count("|")  # its place in line.split("|")
        for line in [line for line in text.splitlines() if line.startswith("| CIFAR")]:
            columns = line.split("|")
            assert not re.findall(r"\d\.\d{3,}", "|".join(columns[:p_column] + columns[p_column + 1:])), line
            checked += 1
    assert checked == 3 + 3 + 6  # claims 1 and 6: three cells each; the ablation: five steps, the whole order
    (trace,) = cells(section(md, 9), "CIFAR-10 ResNet-18 W2A4")
    assert trace[1:4] == ["1559 ± 10.0 (n=3)", "2605 ± 40.0 (n=3)", "+1046"]
    (variance,) = cells(section(md, 10), "CIFAR-10 ResNet-18 W2A4")
    assert variance[1:4] == ["0.101 ± 0.00100 (n=3)", "0.158 ± 0.00100 (n=3)", "+0.0564"]


def test_the_legend_defines_each_verdict_and_no_verdict_says_within_seed_noise(tmp_path):
    md = claims_of(tmp_path)
    legend = md.split("## Summary")[0]
    for words in ("paired by seed", "Welch", "95% confidence interval", "80% power", "*holds*: the CI lies above 0",
                  "*does not hold*: the CI lies below 0, or below the paper's gain",
                  "*not detected (this design detects ≥ X)*", "*undetermined*: fewer than 2 seeds", "Holm"):
        assert words in legend, words
    assert "seed noise" not in md.replace("hide in the seed noise", "")


@pytest.mark.parametrize("trajectory_probes, says", [(8, "Fig. 5's trajectory uses 8 probes a point"),
                                                     (32, "as many a point")])
def test_the_hessian_claim_says_which_probe_counts_it_and_fig5_used(tmp_path, trajectory_probes, says):
    md = claims_of(tmp_path, trace=lambda c: 1000.0 + c.seed, probes=32,
                   trajectory=lambda c: [{"epoch": 0, "mean": 1.0, "probes": trajectory_probes}])
    assert "Final models: Hutchinson trace with 32 Rademacher probes" in section(md, 9) and says in section(md, 9)
    assert "σ = 0.1" not in md  # no variance results in this index: nothing to state


def test_the_variance_claim_states_the_noise(tmp_path):
    md = claims_of(tmp_path, variance=lambda c: 0.1 + 0.01 * c.seed, sigma=0.25)
    assert "Logit variance under Gaussian input noise of σ = 0.25." in section(md, 10)
