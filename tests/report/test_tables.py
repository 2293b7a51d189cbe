"""Tables and claims from the runs of a run index (synthetic numbers chosen so the answers are known)."""
import math
import re
from pathlib import Path

import pytest

from fpq.plan.index import RunIndex
from fpq.report.results import Stat, collect
from fpq.report.stats import verdict_text, welch
from fpq.report.tables import build_tables
from tests.fake_results import workflow_config, write_results

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "config" / "reference_tables.csv"
BASE_TOP1 = {"fp": 95.0, "pact": 85.0, "lsq": 90.0, "lsq+": 89.0, "kd": 91.0, "lsq+sam": 92.0, "lsq+sfp": 91.0,
             "lsq+csd": 92.0, "fpq": 93.0}
GRIDS = {
    # bits and archs deliberately out of the paper's order; PACT, LSQ+ and KD are not in this grid
    "main": {"datasets": ["cifar10"], "archs": ["mobilenetv1", "resnet18"], "bits": ["w2a2", "w4a4", "w2a4"],
             "methods": ["lsq", "fpq"]},
    "ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"],
                 "methods": ["lsq", "lsq+sfp", "lsq+csd", "fpq"]},
    "psweep": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"], "methods": ["fpq"],
               "sfp_p": [0, 0.1, 0.5]},
    "sam": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w4a4"], "methods": ["lsq+sam", "fpq"]},
}


def jitter(cell) -> float:
    """Under 0.001, so no printed mean or std moves, but no two methods differ by the same amount on
    every seed: a comparison with no spread at all is no test (fpq.report.stats)."""
    return 0.0001 * ((list(BASE_TOP1).index(cell.method) * cell.seed) % 11)


def top1(cell):
    """Seeds 0, 1, 2 -> base - 0.2, base, base + 0.2 (std 0.2); FPQ gains 0.5 per unit of p above 0.1."""
    gain = 5 * (cell.p - 0.1) if cell.method == "fpq" else 0.0
    return BASE_TOP1[cell.method] + gain + 0.2 * (cell.seed - 1) + jitter(cell)


@pytest.fixture
def tables(tmp_path):
    config = workflow_config(tmp_path / "results", GRIDS)
    index = write_results(config, top1, trace=lambda c: (3000.0 if c.method == "fpq" else 5000.0) + c.seed + jitter(c),
                          variance=lambda c: {"fp": 1.0, "lsq": 3.0, "fpq": 2.0}[c.method] + 0.1 * c.seed + jitter(c))
    out = tmp_path / "tables"
    build_tables(tmp_path / "results", index, out, REFERENCE)
    return out


def read(out: Path, name: str) -> str:
    return (out / name).read_text()


def rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()
            if line.startswith("|") and not line.startswith("|--") and not line.startswith("| Arch")
            and not line.startswith("| Dataset") and not re.match(r"^\|[-:| ]+\|$", line)]


def test_comparison_table_shows_mean_std_n_paper_and_difference_in_paper_order(tables):
    table = rows(read(tables, "table4_cifar10.md"))
    assert [r[:3] for r in table] == [
        ["ResNet-18", "FP", "FP"], ["ResNet-18", "W4A4", "LSQ"], ["ResNet-18", "W4A4", "FPQ"],
        ["ResNet-18", "W2A4", "LSQ"], ["ResNet-18", "W2A4", "FPQ"], ["ResNet-18", "W2A2", "LSQ"],
        ["ResNet-18", "W2A2", "FPQ"], ["MobileNetV1", "FP", "FP"], ["MobileNetV1", "W4A4", "LSQ"],
        ["MobileNetV1", "W4A4", "FPQ"], ["MobileNetV1", "W2A4", "LSQ"], ["MobileNetV1", "W2A4", "FPQ"],
        ["MobileNetV1", "W2A2", "LSQ"], ["MobileNetV1", "W2A2", "FPQ"]]
    assert table[0][3:] == ["95.00 ± 0.20", "3", "88.72 (a)", "+6.28"]
    assert table[3][3:] == ["90.00 ± 0.20", "3", "88.36", "+1.64"]
    assert table[4][3:] == ["93.00 ± 0.20", "3", "89.92", "+3.08"]
    assert "PACT" not in read(tables, "table4_cifar10.md")  # a method outside the grid is not a "missing" row
    assert "No runs for this table" in read(tables, "table5_cifar100.md")


def test_number_columns_are_right_aligned_and_latex_is_booktabs_with_its_own_numbering(tables):
    md = read(tables, "table4_cifar10.md")
    assert re.search(r"^\|:?-+\|:?-+\|:?-+\|-+:\|-+:\|-+:\|-+:\|$", md, re.M), md
    tex = read(tables, "table4_cifar10.tex")
    assert "\\usepackage{booktabs}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "\\begin{tabular}{lllrrrr}" in tex
    caption = re.search(r"\\caption\{(.*)\}", tex).group(1)
    assert "Table" not in caption and "CIFAR-10 top-1" in caption
    assert "90.00 $\\pm$ 0.20" in tex and "# Table 4: CIFAR-10" in md


def test_the_papers_oddity_notes_become_footnotes(tables):
    md = read(tables, "table4_cifar10.md")
    assert re.search(r"\| MobileNetV1 \| W2A4 +\| LSQ +\| +90\.00 ± 0\.20 \| +3 \| +78\.15 \(c\)", md), md
    assert "(a) Paper: far below the usual ~95% of a CIFAR-10 ResNet-18." in md
    assert "(b) Paper: below the paper's own LSQ W2A4 (88.36)." in md
    assert "(c) Paper: possible copy error in paper (same value for both MobileNets)." in md
    assert "\\textsuperscript{c}~possible copy error" in read(tables, "table4_cifar10.tex")
    assert "(a) Paper: model inferred (not named in caption)." in read(tables, "table3_psweep.md")


def test_ablation_psweep_and_sam_tables(tables):
    ablation = rows(read(tables, "table2_ablation.md"))
    assert [(r[3], r[4], r[6]) for r in ablation] == [("LSQ", "90.00 ± 0.20", "88.36"),
                                                      ("LSQ+SFP", "91.00 ± 0.20", "89.30"),
                                                      ("LSQ+CSD", "92.00 ± 0.20", "89.66"),
                                                      ("FPQ", "93.00 ± 0.20", "89.92")]
    # p = 0 is answered by the LSQ+CSD run (92), shown with the paper's p = 0 number
    psweep = rows(read(tables, "table3_psweep.md"))
    assert [(r[3], r[4], r[6]) for r in psweep] == [("0", "92.00 ± 0.20", "89.66 (a)"),
                                                    ("0.1", "93.00 ± 0.20", "89.92 (a)"),
                                                    ("0.5", "95.00 ± 0.20", "89.83 (a)")]
    sam = rows(read(tables, "table1_sam.md"))
    assert [(r[3], r[4], r[6]) for r in sam] == [("FP", "95.00 ± 0.20", "88.72 (a)"), ("LSQ+SAM", "92.00 ± 0.20", "89.75"),
                                                 ("FPQ", "93.00 ± 0.20", "90.16")]


def test_best_epoch_option(tmp_path):
    config = workflow_config(tmp_path / "results", {"ablation": GRIDS["ablation"]})
    index = write_results(config, top1)
    build_tables(tmp_path / "results", index, tmp_path / "best", REFERENCE, metric="best")
    md = read(tmp_path / "best", "table2_ablation.md")
    assert "90.50 ± 0.20" in md and "best-epoch" in md


def test_only_the_runs_of_the_index_count(tmp_path):
    """Results of seeds [0, 1, 2] in the folder, an index of seeds [0]: n = 1, not 3."""
    results = tmp_path / "results"
    write_results(workflow_config(results, {"ablation": GRIDS["ablation"]}), top1)
    write_results(workflow_config(results, {"main": {**GRIDS["main"], "archs": ["resnet50"]}}), top1)
    index = RunIndex.from_plan(__import__("fpq.plan.grid").plan.grid.expand(
        workflow_config(results, {"ablation": GRIDS["ablation"]}, seeds=[0])))
    build_tables(results, index, tmp_path / "tables", REFERENCE)
    ablation = rows(read(tmp_path / "tables", "table2_ablation.md"))
    assert [r[5] for r in ablation] == ["1"] * 4 and ablation[0][4] == "89.80"
    assert "No runs for this table" in read(tmp_path / "tables", "table4_cifar10.md")  # the other config's runs


def test_a_run_at_chance_level_and_a_teacher_with_seeds_far_apart_are_flagged_in_the_table(tmp_path):
    """The CI config's case: QAT runs at 14.33 and 9.00 on CIFAR-10 (chance: 10%), teachers at 14 and 40
    (apart by more than half their mean). Each row gets its marker and the table one footnote per marker;
    a healthy table gets neither."""
    grid = {"main": {"datasets": ["cifar10"], "archs": ["resnet20"], "bits": ["w2a4"], "methods": ["lsq", "fpq"]}}
    config = workflow_config(tmp_path / "results", grid, seeds=[0, 1])
    low = {"fp": [14.0, 40.0], "lsq": [14.33, 30.0], "fpq": [9.0, 9.0]}
    index = write_results(config, lambda c: low[c.method][c.seed])
    build_tables(tmp_path / "results", index, tmp_path / "tables", REFERENCE)
    md = read(tmp_path / "tables", "table4_cifar10.md")
    ours = {r[2]: r[3] for r in rows(md)}
    assert ours == {"FP": "27.00 ± 18.38 †‡", "LSQ": "22.16 ± 11.08 †", "FPQ": "9.00 ± 0.00 †"}, ours
    assert md.count("\n† At chance level: a seed of this row has top-1 at most 1.5 × the 100/classes %") == 1
    assert md.count("\n‡ The teacher's seeds differ by more than half their mean") == 1
    tex = read(tmp_path / "tables", "table4_cifar10.tex")
    assert "27.00 $\\pm$ 18.38 $^\\dagger$$^\\ddagger$" in tex and "$^\\dagger$ At chance level" in tex
    config = workflow_config(tmp_path / "healthy", {"main": grid["main"]})
    build_tables(tmp_path / "healthy", write_results(config, top1), tmp_path / "healthy_tables", REFERENCE)
    healthy = read(tmp_path / "healthy_tables", "table4_cifar10.md")
    assert "95.00 ± 0.20" in healthy and not {"†", "‡", "chance"} & set(re.findall(r"†|‡|chance", healthy))


def test_failed_runs_are_counted_as_failed_and_never_as_missing(tmp_path):
    results = tmp_path / "results"
    config = workflow_config(results, {"ablation": GRIDS["ablation"]})
    failing = lambda c: None if c.method == "lsq+sfp" or (c.method == "lsq" and c.seed == 2) else top1(c)  # noqa: E731
    index = write_results(config, failing)
    (results / "runs" / "resnet18_cifar10_w2a4_fpq_p0.1_s1" / "metrics.json").unlink()  # one missing
    build_tables(results, index, tmp_path / "tables", REFERENCE)
    md = read(tmp_path / "tables", "table2_ablation.md")
    table = rows(md)
    assert table[0][4:6] == ["89.90 ± 0.14 [1 failed]", "2"]
    assert table[1][4:6] == ["failed (3)", "0"]
    assert table[3][4:6] == ["93.00 ± 0.28", "2"]
    assert "Missing runs (1)" in md and "- resnet18_cifar10_w2a4_fpq_p0.1_s1" in md
    assert "lsq+sfp_p0.1_s0" not in md.split("Missing runs")[1]
    claims = read(tmp_path / "tables", "claims.md")
    assert "## Failed runs (4)" in claims and "resnet18_cifar10_w2a4_lsq_s2: DivergenceError: nan" in claims
    assert "## Missing runs (1)" in claims


def test_claims_cover_every_claim_of_the_paper_with_a_rollup(tables):
    claims = read(tables, "claims.md")
    for title in ("FPQ beats LSQ (Tables 2, 4, 5)", "FPQ beats PACT", "FPQ beats LSQ+ (", "FPQ beats KD",
                  "FPQ beats LSQ+SAM (Table 1)", "FPQ beats the full-precision model", "Ablation order",
                  "The best p lies in 0.1–0.5", "Hessian trace is below LSQ's", "output variance under input noise"):
        assert title in claims, title
    summary = claims.split("## 1.")[0]
    # FPQ (93) beats LSQ (90) in all 6 settings (3 bits x 2 archs; the ablation's and the SAM grid's
    # settings are among them); seeds differ by 0.2, so every cell is significant.
    assert re.search(r"FPQ beats LSQ \(Tables 2, 4, 5\) +\| holds in 6 of 6 cells, 6 after Holm's", summary), summary
    assert re.search(r"FPQ beats the full-precision model.*\| holds in 0 of 6 cells, 0 after Holm's correction "
                     r"\(6 does not hold\)", summary)
    assert re.search(r"FPQ beats LSQ\+SAM \(Table 1\) +\| holds in 1 of 1 cell, 1 after Holm's", summary)
    assert re.search(r"FPQ beats PACT \(Tables 4, 5\) +\| no cells", summary)
    assert re.search(r"Hessian trace is below LSQ's.*\| holds in 6 of 6 cells", summary)
    assert re.search(r"output variance under input noise is below LSQ's.*\| holds in 6 of 6 cells", summary)
    ablation = claims.split("## 7.")[1].split("## 8.")[0]
    assert re.search(r"\| CIFAR-10 ResNet-18 W2A4 \| LSQ\+SFP − LSQ +\| \+1\.00 .*\| \+0\.94 .*\| holds", ablation)
    assert re.search(r"\| the whole order .*\| holds +\|", ablation)
    psweep = claims.split("## 8.")[1].split("## 9.")[0]
    assert "p=0: 92.00, p=0.1: 93.00, p=0.5: 95.00" in psweep and "| 0.5 " in psweep and "p=0.5 vs p=0" in psweep


def test_a_method_whose_name_has_digits_and_dashes_is_listed_when_missing(tmp_path, monkeypatch):
    from fpq.method.registry import METHODS, MethodSpec

    monkeypatch.setitem(METHODS, "lsq2_b-x", MethodSpec("lsq2_b-x", "lsq", label="LSQ2"))
    config = workflow_config(tmp_path / "results", {"ablation": {**GRIDS["ablation"], "methods": ["lsq"]}},
                             seeds=[0])
    config["grids"]["ablation"]["methods"].append("lsq2_b-x")  # past the schema, as a registered plug-in would be
    index = RunIndex.from_plan(__import__("fpq.plan.grid").plan.grid.expand(config))
    assert "resnet18_cifar10_w2a4_lsq2_b-x_s0" in index.runs
    build_tables(tmp_path / "results", index, tmp_path / "tables", REFERENCE)
    assert "- resnet18_cifar10_w2a4_lsq2_b-x_s0" in read(tmp_path / "tables", "claims.md")


def test_collect_reads_cells_from_the_index_not_from_folder_names(tmp_path):
    config = workflow_config(tmp_path / "results", {"ablation": GRIDS["ablation"]}, seeds=[0])
    index = write_results(config, top1)
    runs = tmp_path / "results" / "runs"
    (runs / "resnet18_cifar10_w2a4_lsq_s0").rename(runs / "renamed")  # a folder name means nothing
    c = collect(tmp_path / "results", index)
    assert set(c.runs.status) == {"ok", "missing"}
    assert c.runs.set_index("run_id").status["resnet18_cifar10_w2a4_lsq_s0"] == "missing"


def compare(a: Stat, b: Stat, higher_is_better: bool = True) -> tuple[str, float, float]:
    c = welch(a.mean, a.std, a.n, b.mean, b.std, b.n, higher_is_better)
    return verdict_text(c), c.gain, c.p_value


def test_welch_verdicts_from_summaries():
    a, b = Stat(92.0, 0.3, 3), Stat(90.0, 0.3, 3)
    assert compare(a, b)[0] == "holds"
    assert compare(b, a)[0] == "does not hold (CI below 0)"
    verdict, diff, p_value = compare(Stat(90.1, 1.0, 3), Stat(90.0, 1.0, 3))
    assert re.fullmatch(r"not detected \(this design detects ≥ \d+\.\d\d points\)", verdict), verdict
    assert compare(Stat(91.0, math.nan, 1), b)[0] == "undetermined (fewer than 2 seeds)"
    verdict, diff, _ = compare(Stat(3000.0, 10.0, 3), Stat(5000.0, 10.0, 3), higher_is_better=False)
    assert verdict == "holds" and diff == pytest.approx(2000.0)
