"""What a reader opens: each table and the claims as HTML tables with captions (what the Snakemake
report shows), and the provenance stamp on every table, the claims and every figure."""
import re
from pathlib import Path

import pytest

from fpq.plan.grid import expand
from fpq.report.curves import curves_plot
from fpq.report.figures import hessian_plot, variance_plot
from fpq.report.html_page import body_html, page
from fpq.report.results import collect
from fpq.report.tables import build_tables
from tests.fake_results import workflow_config, write_results
from tests.report.report_html import html_tables, text_of
from tests.report.test_figures import figure_text

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "config" / "reference_tables.csv"
GRIDS = {"ablation": {"datasets": ["cifar10"], "archs": ["resnet18"], "bits": ["w2a4"],
                      "methods": ["lsq", "lsq+sfp", "lsq+csd", "fpq"]},
         "main": {"datasets": ["cifar100"], "archs": ["resnet18"], "bits": ["w4a4"], "methods": ["lsq", "fpq"]}}
TABLES = ["table1_sam", "table2_ablation", "table3_psweep", "table4_cifar10", "table5_cifar100"]


def history(cell):
    """One epoch; CIFAR-10 runs record the images they trained on, the CIFAR-100 ones (an older fpq) do not."""
    return [{"epoch": 1, "test_acc": 80.0 + cell.seed, **({"train_images": 4000} if cell.dataset == "cifar10" else {})}]


@pytest.fixture
def built(tmp_path):
    config = workflow_config(tmp_path / "results", GRIDS, teacher={"epochs": 7}, qat={"epochs": 1},
                             data={"cifar10": {"source": "npz", "path": "c10.npz", "test_subset": 300},
                                   "cifar100": {"source": "torchvision", "root": "data"}})
    index = write_results(config, lambda c: 90.0 + c.seed, trace=lambda c: 100.0 * (1 + c.seed), history=history)
    build_tables(tmp_path / "results", index, tmp_path / "tables", REFERENCE)
    return tmp_path, collect(tmp_path / "results", index), expand(config)


def pipe_tables(markdown: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append([current[0]] + current[2:])  # without the alignment row
            current = []
    return tables


def test_every_markdown_table_is_an_html_table_with_its_caption(built):
    tmp, _, _ = built
    for name in TABLES + ["claims"]:
        md, html = (tmp / "tables" / f"{name}.md").read_text(), (tmp / "tables" / f"{name}.html").read_text()
        found, expected = html_tables(html), pipe_tables(md)
        assert [t["rows"] for t in found] == expected, name  # the same cells, as the .md has them
        assert all(t["caption"].strip() for t in found), name
    (ablation,) = html_tables((tmp / "tables" / "table2_ablation.html").read_text())
    assert ablation["caption"].startswith("Table 2: Ablation of SFP and CSD, top-1 (%)Ours: final-epoch test top-1")
    claims = html_tables((tmp / "tables" / "claims.html").read_text())
    assert claims[0]["caption"] == "Summary" and claims[1]["caption"].startswith("1. FPQ beats LSQ (Tables 2, 4, 5)")


def test_the_markdown_subset_converts_as_a_browser_should_read_it():
    html = body_html("# T\n\nsome *x* < y\n\n| a | b |\n|:--|--:|\n| 1 | **2** |\n\n- item\n\n## Alone\n\ntext")
    assert html.startswith("<table>\n<caption><strong>T</strong><p>some <em>x</em> &lt; y</p></caption>")
    assert '<td style="text-align:right"><strong>2</strong></td>' in html
    assert "<ul><li>item</li></ul>\n<h2>Alone</h2>\n<p>text</p>" in html
    assert page("# T", "T & U").count("<title>T &amp; U</title>") == 1


def stamp_parts(config_name: str) -> list[str]:
    return [f"Made from config {config_name}", "CIFAR-10 (c10.npz), 4,000 train / 300 test images",
            "teacher 7 epochs, QAT 1 epoch", "seeds 0, 1, 2", "code 0123456", "CPU (x86_64), torch 2.14.1"]


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_a_table_the_claims_and_every_figure_say_what_made_them(built):
    tmp, collected, _ = built
    line = " · ".join(stamp_parts("synthetic"))
    tables = tmp / "tables"
    assert line + "\n" in (tables / "table2_ablation.md").read_text()
    assert line.replace("%", r"\%") in (tables / "table2_ablation.tex").read_text()
    (ablation,) = html_tables((tables / "table2_ablation.html").read_text())
    assert line in ablation["caption"]
    rst = (tables / "table2_ablation.caption.rst").read_text()
    assert "**Table 2: Ablation of SFP and CSD, top-1 (%)**\n\n" + line.replace("_", r"\_") in rst  # RST-escaped
    claims = (tables / "claims.md").read_text()
    made = "Made from config synthetic · CIFAR-10 (c10.npz), 4,000 train / 300 test images; CIFAR-100 (torchvision"
    assert claims.split("\n\n")[1].startswith(made)  # right under the title: both datasets' runs made the claims
    assert made in text_of((tables / "claims.html").read_text())
    for plot in (hessian_plot, variance_plot, curves_plot):
        assert made in flat(figure_text(plot(collected))), plot.__name__


def test_each_table_is_stamped_with_its_own_runs(built):
    tmp, _, _ = built
    t5 = (tmp / "tables" / "table5_cifar100.md").read_text()
    assert "CIFAR-100 (torchvision download into data), 50,000 train / 10,000 test images" in t5
    assert "CIFAR-10 (" not in t5  # the ablation's CIFAR-10 runs made none of Table 5
    t1 = (tmp / "tables" / "table1_sam.md").read_text()  # no sam grid in this config: it says so, not "no result yet"
    assert "Made from config synthetic · this config has no sam grid" in t1
    assert "No runs for this table: this config has no sam grid." in t1
