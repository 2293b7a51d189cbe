"""The SLURM profile, exercised without a cluster: a dry run of the paper config through it, and the
sbatch request the executor plugin would build for every job."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fpq.plan.budget import load_timings, run_seconds
from fpq.plan.grid import expand, load_workflow_config

REPO = Path(__file__).resolve().parent.parent
PROFILE = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
GPU_RULES = ("train_teacher", "train_qat", "measure_hessian", "probe_variance")


class Resources(dict):
    __getattr__ = dict.__getitem__


class Job:
    """What the plugin reads of a job: its resources and threads."""

    def __init__(self, resources: dict):
        self.resources, self.threads = Resources(resources), 1


def _value(text: str):
    return int(text) if re.fullmatch(r"\d+", text) else text


def dry_run_jobs() -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "workflow/profiles/slurm",
                          "--configfile", "config/paper.yaml", "--config", "results=/nonexistent/results"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", out.stdout):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not rule or rule.group(1) == "all":
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        run = re.search(r"^\s+wildcards: run=(\S+)$", block, re.M)
        jobs.append({"rule": rule.group(1), "run": run.group(1) if run else None,
                     "resources": dict((k, _value(v)) for k, v in (item.split("=", 1) for item in
                                                                  res.group(1).split(", ")))})
    return jobs


@pytest.fixture(scope="module")
def jobs():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("the SLURM executor plugin is missing: install with pip install -e '.[test,slurm]' (README)")
    return dry_run_jobs()


def test_every_gpu_job_asks_for_one_gpu_its_memory_and_partition(jobs):
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    counted = {rule: sum(j["rule"] == rule for j in jobs) for rule in GPU_RULES}
    assert counted == {"train_teacher": 24, "train_qat": 387, "measure_hessian": 144, "probe_variance": 168}
    for job in (j for j in jobs if j["rule"] in GPU_RULES):
        res = job["resources"]
        wanted = {**PROFILE["default-resources"], **PROFILE["set-resources"][job["rule"]]}
        assert res["gpu"] == 1 and res["slurm_partition"] == wanted["slurm_partition"] == "gpu", job
        assert res["mem_mb"] == wanted["mem_mb"] and res["slurm_account"] == wanted["slurm_account"], job
        request = get_submit_command(Job(res), {"run_uuid": "x", "slurm_logfile": "x", "comment_str": "x",
                                                "account": f"-A {res['slurm_account']}",
                                                "partition": f"-p {res['slurm_partition']}", "workdir": ""})
        request += set_gres_string(Job(res))
        assert "--gpus=1" in request and f"-t {res['runtime']}" in request and f"--mem {res['mem_mb']}" in request
        if job["rule"].startswith("train"):
            assert res["cpus_per_task"] == 4 and "--cpus-per-task=4" in request


def test_training_runtimes_come_from_the_budget(jobs):
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    plan, timings = expand(config), load_timings(REPO / "config" / "epoch_seconds.yaml")
    trained = [j for j in jobs if j["rule"] in ("train_teacher", "train_qat")]
    assert len(trained) == len(plan.runs)
    for job in trained:
        estimate = run_seconds(plan.runs[job["run"]].config, timings) / 60
        assert max(10, estimate) <= job["resources"]["runtime"] <= max(10, 2 * estimate), job
    hessian = {j["resources"]["runtime"] for j in jobs if j["rule"] == "measure_hessian"}
    assert hessian == {PROFILE["set-resources"]["measure_hessian"]["runtime"]}


def test_light_jobs_ask_for_no_gpu_and_run_on_the_submit_host(jobs):
    light = [j for j in jobs if j["rule"] not in GPU_RULES]
    assert sorted({j["rule"] for j in light}) == ["build_tables", "fetch_data", "index_runs", "plot_figures"]
    assert all("gpu" not in j["resources"] for j in light)
    snakefile = (REPO / "Snakefile").read_text()
    declared = re.search(r"localrules:\n((?:\s+\w+,\n)+)", snakefile).group(1).split()
    assert sorted(r.rstrip(",") for r in declared) == ["build_tables", "fetch_data", "index_runs", "plot_figures"]


def test_the_profile_names_what_a_user_edits_and_polls_without_an_accounting_database():
    """Exactly two lines to edit, marked where they are and listed in the header; job states
    from squeue (sacct only errors where no slurmdbd runs). tests/slurm/ runs a copy edited so."""
    text = (REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text()
    marked = re.findall(r"^  (\w+): .*# EDIT$", text, re.M)
    assert marked == ["slurm_account", "slurm_partition"] and text.count("# EDIT") == 3  # 2 lines + header
    header = text.split("executor:")[0]
    assert all(f"#   {key}" in header for key in marked)
    assert PROFILE["slurm-status-command"] == "squeue"
    readme = (REPO / "README.md").read_text()
    assert "snakemake --profile workflow/profiles/slurm --configfile config/paper.yaml" in readme
    assert "two lines marked `# EDIT`" in readme
