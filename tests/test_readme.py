"""The README's first section is the offline first run a newcomer can make anywhere: the CI config,
then its report, with the time it takes."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def test_the_first_section_is_the_offline_first_run_and_its_report_with_their_time():
    readme = (REPO / "README.md").read_text()
    first = readme.split("\n## ")[1]  # the first section after the title and the introduction
    assert first.startswith("First run: offline")
    assert "snakemake --cores 2 --configfile config/ci.yaml" in first
    assert "snakemake --report report.html --configfile config/ci.yaml" in first
    assert re.search(r"in about \d+ minutes", first)
    data = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())["data"]
    assert all(d["source"] == "npz" and (REPO / d["path"]).is_file() for d in data.values())  # offline indeed
