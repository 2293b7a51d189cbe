# The plan of this config (fpq.plan.grid.expand: runs, grids, measurements), computed once.
import json
import os
import re

import snakemake.rules as workflow_rules

from fpq.plan.blocks import blocks_folder, check_counted_once, read_blocks, sitting_config
from fpq.plan.budget import load_timings, run_seconds
from fpq.config import effective_json, to_dict
from fpq.plan.checks import check_data_files, one_line_errors
from fpq.plan.grid import expand as expand_plan
from fpq.plan.order import job_priority, stage_priority

# A study made of sittings (config `blocks:`, fpq.plan.blocks): this sitting trains its own teacher
# and the seeds that no committed block finished; nothing a block finished is rerun.
with one_line_errors():
    check_counted_once(config)  # no run a block already counts is in this sitting's results folder
    PLAN = expand_plan(sitting_config(config))
    check_data_files(PLAN, SOURCE)  # a missing .npz stops here, naming its config key
CALLABLE_PRIORITY = hasattr(workflow_rules.Rule, "expand_priority")
RUNS = PLAN.runs
RESULTS = config["results"]
TEACHER_IDS, QAT_IDS = PLAN.ids("teacher"), PLAN.ids("qat")
HESSIAN_IDS, VARIANCE_IDS = PLAN.hessian_ids, PLAN.variance_ids
TIMINGS = load_timings("config/epoch_seconds.yaml")
DOWNLOAD_ROOTS = sorted({src["root"] for src in config["data"].values() if src["source"] == "torchvision"})


def id_pattern(ids):
    return "|".join(re.escape(i) for i in ids) or "(?!)"


def data_file(wildcards):
    """The .npz a run reads: the configured file, or the torchvision cache that fetch_data makes."""
    data = RUNS[wildcards.run].config.data
    if data.source == "npz":
        return data.path
    # Imported only here: fpq.run.data imports torch (3 s), which every parse of this Snakefile,
    # twice in each SLURM job, would pay for otherwise.
    from fpq.run.data import cache_path

    return str(cache_path(data.dataset, data.root))


def run_identity_json(wildcards):
    """The keys that can change this run's result: a params value, so changing one reruns exactly
    its runs (thread count, progress output and the speed keys are not among them)."""
    return effective_json(RUNS[wildcards.run].config)


class Untracked:
    """A params value that Snakemake passes to the command but does not compare: it records, and
    reruns a job when they change, only the params it can represent (str, numbers, containers).
    So the speed keys (fpq.config.SPEED_KEYS) reach the run but never rerun a finished one."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


def run_config_json(wildcards):
    """The run's whole config, speed keys included, for `--config-json` (untracked: see Untracked)."""
    return Untracked(json.dumps(to_dict(RUNS[wildcards.run].config), sort_keys=True))


def runtime_minutes(wildcards, attempt):
    """SLURM runtime from config/epoch_seconds.yaml, doubled per retry, at least 10 minutes."""
    return max(10, int(run_seconds(RUNS[wildcards.run].config, TIMINGS) / 60 * 1.5 * attempt))


def start_priority(stage):
    """A rule's `priority:` (fpq.plan.order): teachers, then QAT seed by seed, then the measurements.
    Per job where the installed Snakemake takes a function for it (9.27 does), else per stage."""
    if not CALLABLE_PRIORITY:
        return stage_priority(stage)
    return lambda wildcards: job_priority(PLAN, wildcards.run, stage, config["seeds"])


def run_file(name):
    return f"{RESULTS}/runs/{{run}}/{name}"


def config_json():
    """This workflow config as canonical JSON (key order does not matter)."""
    return json.dumps(config, sort_keys=True)


def in_report(path, category, label):
    """The report shows this file (an HTML page or a PNG) under its caption file <name>.caption.rst,
    written beside it by the same job (title and provenance stamp; absolute, as the caption is read
    from the output folder, not from workflow/rules/), listed by its label ("Table 2 — ablation of SFP
    and CSD") in its category (Tables, Claims, Figures), under a subcategory naming the config."""
    caption = os.path.abspath(os.path.splitext(path)[0] + ".caption.rst")
    return report(path, caption=caption, category=category, subcategory=f"config {config['name']}",
                  labels={"name": label})
