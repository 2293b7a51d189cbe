"""`fpq budget`'s breakdown: by architecture and stage, each row's source and share, adding up to the total."""
import contextlib
import io
import re
from pathlib import Path

import pytest

from fpq.cli import main
from fpq.plan.budget import budget_report, load_timings
from fpq.plan.budget_breakdown import breakdown, breakdown_report
from fpq.plan.grid import load_workflow_config

REPO = Path(__file__).resolve().parents[2]
TIMINGS = REPO / "config" / "epoch_seconds.yaml"


def test_the_rows_add_up_to_the_budgets_total_and_say_where_their_seconds_come_from():
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    rows = breakdown(config, load_timings(TIMINGS))
    total = float(budget_report(config, TIMINGS).split("total: ")[1].split(" GPU-hours")[0])
    assert sum(r.seconds for r in rows) / 3600 == pytest.approx(total, abs=0.05)
    assert sum(r.jobs for r in rows if r.stage != "Hessian") == 24 + 387
    timings = load_timings(TIMINGS)
    for r in rows:
        row = timings["archs"][r.arch]
        assert r.source == f"{'estimated' if row.get('estimated') else 'measured'}: {row['source']}"


def test_the_report_prints_each_architectures_share_and_its_source():
    text = breakdown_report(load_workflow_config(REPO / "config" / "paper.yaml"), TIMINGS)
    shares = {m.group(1): float(m.group(2)) for m in re.finditer(r"^  (\w+) +all +\d+ +[\d.]+ +([\d.]+)%$", text, re.M)}
    assert set(shares) == {"resnet18", "resnet50", "mobilenetv1", "mobilenetv2"}
    assert sum(shares.values()) == pytest.approx(100.0, abs=0.3)
    marks = dict(re.findall(r"^  (\[\d\]) (.*)$", text, re.M))
    resnet18 = re.search(r"^  resnet18 +QAT .*(\[\d\])$", text, re.M).group(1)
    assert marks[resnet18].startswith("measured: NVIDIA H200, fpq qat path [graph]")
    resnet50 = re.search(r"^  resnet50 +QAT .*(\[\d\])$", text, re.M).group(1)
    assert marks[resnet50] == "estimated: H100 (plain PyTorch loop, fp32 eager)"


def test_an_architecture_without_a_row_is_priced_as_an_estimate_and_says_so(tmp_path):
    timings = load_timings(TIMINGS)
    del timings["archs"]["resnet20"]
    config = load_workflow_config(REPO / "config" / "ci.yaml")
    (teacher, *_) = breakdown(config, timings)
    assert teacher.arch == "resnet20" and teacher.source.startswith("estimated: no row; ")


def test_fpq_budget_prints_the_breakdown_under_the_total():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["budget", "--configfile", "config/paper.yaml"]) == 0
    text = out.getvalue()
    assert text.index("total: ") < text.index("by architecture and stage:") < text.index("sources of the seconds")
