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


def test_the_first_run_says_how_a_cpu_only_machine_installs_the_cpu_build_of_the_same_torch():
    """The pinned torch from PyPI is the CUDA build (5.9 GB of CUDA libraries): the first section says
    so and gives the CPU index's command, pinning the same torch and torchvision as the install line."""
    first = (REPO / "README.md").read_text().split("\n## ")[1]
    pinned = re.search(r"pip install (torch==\S+ torchvision==\S+) && pip install -e", first).group(1)
    cpu = re.search(r"pip install (torch==\S+ torchvision==\S+) --index-url https://download\.pytorch\.org/whl/cpu",
                    first)
    assert cpu and cpu.group(1) == pinned, first
    assert "CUDA build" in first and "5.9 GB" in first
