# The run grid, expanded once by fpq.grid (validated: a bad value stops here, before any job).
import os
import re

from fpq.budget import load_timings, run_seconds
from fpq.config import effective_json
from fpq.data import cache_path
from fpq.grid import expand as expand_runs, final_measurements

RUNS = expand_runs(config)
RESULTS = config["results"]
TEACHER_IDS = [rid for rid, run in RUNS.items() if run.teacher_id is None]
QAT_IDS = [rid for rid, run in RUNS.items() if run.teacher_id is not None]
HESSIAN_IDS, VARIANCE_IDS = final_measurements(config, RUNS)
TIMINGS = load_timings("config/epoch_seconds.yaml")
DOWNLOAD_ROOTS = sorted({src["root"] for src in config["data"].values() if src["source"] == "torchvision"})


def id_pattern(ids):
    return "|".join(re.escape(i) for i in ids) or "(?!)"


def data_file(wildcards):
    """The .npz a run reads: the configured file, or the torchvision cache that fetch_data makes."""
    data = RUNS[wildcards.run].config.data
    return data.path if data.source == "npz" else str(cache_path(data.dataset, data.root))


def run_config_json(wildcards):
    """The keys that matter to this run: a params value, so changing one reruns exactly its runs."""
    return effective_json(RUNS[wildcards.run].config)


def runtime_minutes(wildcards, attempt):
    """SLURM runtime from config/epoch_seconds.yaml, doubled per retry, at least 10 minutes."""
    return max(10, int(run_seconds(RUNS[wildcards.run].config, TIMINGS) / 60 * 1.5 * attempt))


def run_file(name):
    return f"{RESULTS}/runs/{{run}}/{name}"


def results_dir(metrics_path):
    """<results> from <results>/runs/<run>/metrics.json."""
    return os.path.dirname(os.path.dirname(os.path.dirname(metrics_path)))
