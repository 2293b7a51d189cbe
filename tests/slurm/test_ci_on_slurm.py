"""The CI config through workflow/profiles/slurm on a real one-node SLURM cluster (tests/slurm/):
every GPU job a SLURM job, the light ones on the submit host, the tables byte-identical to a
local run's; what each job asked for and got; a cancelled QAT job that resumes.

Sized for CI (9 to 13 minutes on 2 shared cores): config/ci.yaml with one seed, 128 training
and 100 test images and no Hessian trajectory (every rule and every method still runs), and the
LSQ+SAM run made to diverge as in tests/test_workflow.py, so a failed run is seen to be a result."""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fpq.plan.grid import expand, load_workflow_config
from fpq.plan.table_specs import TABLES
from tests.slurm.cluster import PARTITION

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
# Test speed only: by default the plugin waits 40 s before it first asks for job states, and again
# after each finished job it sees (then 10 s longer at every check that sees none finish).
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "2")
CANCELLED_RUN = "resnet20_cifar10_w2a4_lsq_s0"


def snakemake(*args, env=None, timeout=1200):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=timeout)


def write_config(folder: Path, **qat) -> Path:
    config = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    config["seeds"] = [0]
    config["data"]["cifar10"].update(train_subset=128, test_subset=100)
    config["hessian"]["every"] = 0
    config["quant"]["sam_rho"] = 1e6  # LSQ+SAM diverges: a failed result, not a failed job
    config["qat"].update(qat)
    config.update(results=f"{folder}/results", tables=f"{folder}/tables", figures=f"{folder}/figures")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ci_slurm.yaml"  # one file name: both runs name their config alike
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def user_profile(folder: Path, partition: str, account: str | None) -> Path:
    """A copy of the profile with the lines it marks `# EDIT` changed, as its header tells a user;
    `account=None`: the account line deleted (a cluster without accounts)."""
    lines, edited = [], []
    for line in PROFILE.read_text().splitlines():
        key = re.match(r"\s*(\w+):.*# EDIT$", line)
        if key:
            edited.append(key.group(1))
            if key.group(1) == "slurm_account" and account is None:
                continue
            value = {"slurm_account": account, "slurm_partition": partition}[key.group(1)]
            line = f"{line[:line.index(':') + 1]} {json.dumps(value)}"
        lines.append(line)
    assert edited == ["slurm_account", "slurm_partition"], edited
    (folder / "profile").mkdir(parents=True)
    (folder / "profile" / "config.yaml").write_text("\n".join(lines) + "\n")
    return folder / "profile"


def submitted(cluster, output: str) -> dict[str, dict]:
    """This Snakemake run's SLURM jobs by id (the plugin names each after its run ID)."""
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    return {job["id"]: job for job in cluster.jobs() if job["name"] == run_id}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, slurm_cluster):
    """The same config run locally and through a user's copy of the profile, side by side (the
    SLURM run mostly waits on its status polls)."""
    base = tmp_path_factory.mktemp("ci_on_slurm")
    started = time.monotonic()
    with open(base / "local.log", "w") as console:
        local = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                                  str(write_config(base / "local"))], cwd=REPO, stdout=console, stderr=console)
        try:
            profile = user_profile(base, PARTITION, account=None)
            config = write_config(base / "slurm")
            out = snakemake("--profile", str(profile), "--configfile", str(config), *FAST_POLLING,
                            env=slurm_cluster.env)
            slurm_seconds = time.monotonic() - started
            local.wait(timeout=1200)
        finally:
            local.kill()
    assert local.returncode == 0, (base / "local.log").read_text()[-4000:]
    print(f"SLURM run {slurm_seconds:.0f} s, local run beside it {time.monotonic() - started:.0f} s")
    return {"base": base, "config": config, "profile": profile, "out": out}


def test_every_gpu_job_is_a_slurm_job_and_the_tables_equal_the_local_run(runs, slurm_cluster):
    out = runs["out"]
    assert out.returncode == 0, out.stderr[-4000:]
    plan = expand(load_workflow_config(runs["config"]))
    expected = sorted([f"rule_train_teacher_wildcards_{r}" for r in plan.ids("teacher")]
                      + [f"rule_train_qat_wildcards_{r}" for r in plan.ids("qat")]
                      + [f"rule_measure_hessian_wildcards_{r}" for r in plan.hessian_ids]
                      + [f"rule_probe_variance_wildcards_{r}" for r in plan.variance_ids])
    jobs = submitted(slurm_cluster, out.stdout + out.stderr).values()
    assert sorted(job["comment"] for job in jobs) == expected  # each once: no retry, not even of a diverged run
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    for rule in ("index_runs", "build_tables", "plot_figures"):  # on the submit host (no fetch_data: npz data)
        assert f"localrule {rule}:" in out.stdout + out.stderr, rule
    sam = json.loads((runs["base"] / "slurm/results/runs/resnet20_cifar10_w2a4_lsq+sam_s0/metrics.json").read_text())
    assert sam["status"] == "failed" and "DivergenceError" in sam["error"]

    local, slurm = runs["base"] / "local" / "tables", runs["base"] / "slurm" / "tables"
    names = sorted(p.name for p in local.iterdir() if p.suffix in (".md", ".tex"))
    every = sorted(["claims.md"] + [f"{spec.name}{ext}" for spec in TABLES for ext in (".md", ".tex")])
    assert names == every and names == sorted(p.name for p in slurm.iterdir() if p.suffix in (".md", ".tex"))
    for name in names:
        assert (slurm / name).read_bytes() == (local / name).read_bytes(), name


def test_each_job_asked_for_and_got_one_gpu_its_cpus_memory_and_partition(runs, slurm_cluster):
    profile = yaml.safe_load((runs["profile"] / "config.yaml").read_text())
    jobs = submitted(slurm_cluster, runs["out"].stdout + runs["out"].stderr)
    assert jobs
    for job_id, job in jobs.items():
        rule = re.match(r"rule_(\w+?)_wildcards_", job["comment"]).group(1)
        wanted = {**profile["default-resources"], **profile["set-resources"][rule]}
        shown = slurm_cluster.job(job_id)
        assert shown["Partition"] == PARTITION and shown["Account"] == "(null)", shown
        assert shown["TresPerJob"] == "gres:gpu:1" and shown["JOB_GRES"] == "gpu:1", shown  # asked, got
        cpus = wanted.get("cpus_per_task", 1)
        assert f"cpu={cpus},mem={wanted['mem_mb']}M" in shown["TRES"] and shown["CPUs/Task"] == str(cpus), shown
        steps = slurm_cluster.steps_seen(job_id)
        assert set(steps) == {"batch", "0"}, steps  # the batch script, and the srun step running the rule
        gpu = steps["0"]["CUDA_VISIBLE_DEVICES"]
        assert gpu in {"0", "1", "2", "3"} and steps["0"]["SLURM_STEP_GPUS"] == gpu, steps
        assert steps["0"]["SLURM_CPUS_PER_TASK"] == str(cpus), steps
        assert steps["0"].get("PYTHONPATH") == slurm_cluster.env.get("PYTHONPATH"), steps  # --export=ALL


def wait_for_line(path: Path, pattern: str, snakemake_run: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and snakemake_run.poll() is None:
        if path.exists() and re.search(pattern, path.read_text(), re.M):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no line matching {pattern!r} in {path} (Snakemake exit code {snakemake_run.poll()})")


def checkpoint_epoch(run: Path) -> int:
    import torch

    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["epoch"]


def epochs_done(attempt: str) -> list[int]:
    """The epochs an attempt (a section of train.log) completed, from its progress lines."""
    return [int(e) for e in re.findall(r"\] epoch (\d+)/\d+ ", attempt)]


def uninterrupted_run(config: Path, out: Path) -> subprocess.Popen:
    """The run the cancelled job trains, by the rule's own command, locally and in one go."""
    from fpq.config import effective_json

    cfg = expand(load_workflow_config(config)).runs[CANCELLED_RUN].config
    return subprocess.Popen(["fpq", "qat", "--config-json", effective_json(cfg), "--set", "runtime.threads=1",
                             "--out", str(out)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cancel_twice(cluster, run: Path, command: list[str], comment: str, console_path: Path) -> str:
    """Runs Snakemake, cancels the job mid-epoch and its retry right after it resumes; returns
    Snakemake's console once it has given up."""
    with open(console_path, "w") as console:
        first = subprocess.Popen([sys.executable, "-m", "snakemake", *command], cwd=REPO, env=cluster.env,
                                 stdout=console, stderr=subprocess.STDOUT, text=True)
        try:
            job = cluster.wait_for_job(comment, set(), first)
            wait_for_line(run / "train.log", r"epoch 1/3 ", first)  # epoch 1 checkpointed, epoch 2 under way
            cluster.cancel(job)
            retry = cluster.wait_for_job(comment, {job}, first)  # the profile's `retries: 1`
            wait_for_line(run / "train.log", r"resuming after epoch", first)
            cluster.cancel(retry)
            assert first.wait(timeout=600) != 0
        finally:
            first.kill()
    return console_path.read_text()


def test_a_cancelled_qat_job_fails_keeps_its_checkpoint_and_resumes_to_the_uninterrupted_result(
        runs, slurm_cluster):
    """Cancelled twice (the job, then its retry): Snakemake reports the job failed, the checkpoint
    stays, and the same command again resumes from the last completed epoch and ends equal to
    an uninterrupted run of the same config."""
    folder = runs["base"] / "fault"
    config = write_config(folder, epochs=3)
    teacher = "resnet20_cifar10_fp_s0"  # the first run's teacher, the same config: not trained again
    shutil.copytree(runs["base"] / "slurm/results/runs" / teacher, folder / "results/runs" / teacher)
    run = folder / "results" / "runs" / CANCELLED_RUN
    command = [f"{run}/metrics.json", "--profile", str(runs["profile"]), "--configfile", str(config), *FAST_POLLING]
    comment = f"rule_train_qat_wildcards_{CANCELLED_RUN}"
    reference = uninterrupted_run(config, folder / "uninterrupted")
    try:
        console = cancel_twice(slurm_cluster, run, command, comment, folder / "first.log")
        assert "Error in rule train_qat" in console and "SLURM status is: 'CANCELLED'" in console, console[-3000:]
        assert [(j["comment"], j["state"]) for j in submitted(slurm_cluster, console).values()] == \
            [(comment, "CANCELLED")] * 2
        assert not (run / "metrics.json").exists()
        kept = checkpoint_epoch(run)

        again = snakemake(*command, env=slurm_cluster.env)
        assert again.returncode == 0, again.stderr[-4000:]
        assert [(j["comment"], j["state"]) for j in submitted(slurm_cluster, again.stdout + again.stderr).values()] \
            == [(comment, "COMPLETED")]  # the QAT job alone: the teacher was not trained again
        attempts = (run / "train.log").read_text().split("== attempt ")[1:]
        assert len(attempts) == 3, attempts
        for i in (1, 2):  # each attempt resumed after the last epoch the ones before it completed
            last, done = max(e for a in attempts[:i] for e in epochs_done(a)), epochs_done(attempts[i])
            assert f"resuming after epoch {last}" in attempts[i] and done == list(range(last + 1, last + 1 + len(done)))
        assert kept == max(e for a in attempts[:2] for e in epochs_done(a)) < 3  # the checkpoint Snakemake left
        assert epochs_done(attempts[2])[-1] == 3

        _, err = reference.communicate(timeout=600)
        assert reference.returncode == 0, err[-3000:]
    finally:
        reference.kill()
    assert_same_run(run, folder / "uninterrupted")


def assert_same_run(resumed: Path, whole: Path) -> None:
    """Equal metrics (times aside) and bitwise-equal weights."""
    import torch

    a, b = (json.loads((d / "metrics.json").read_text()) for d in (resumed, whole))

    def untimed(history):
        return [{k: v for k, v in row.items() if not k.endswith("_time")} for row in history]

    assert a["final"] == b["final"] and untimed(a["history"]) == untimed(b["history"])
    a, b = (torch.load(d / "model.pt", map_location="cpu", weights_only=True)["state_dict"] for d in (resumed, whole))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
