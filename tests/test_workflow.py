"""The Snakemake DAG: the paper grid, config validation, GPU slots, and the CI config end to end."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.report.report_html import html_tables, report_items, text_of

REPO = Path(__file__).resolve().parent.parent
TABLE_NAMES = ["table1_sam", "table2_ablation", "table3_psweep", "table4_cifar10", "table5_cifar100", "readings"]
UNFED = ("table5_cifar100", "readings")  # tables config/ci.yaml has no grid for: written, not in its report


def snakemake(*args, cwd=REPO, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def job_counts(output: str) -> dict:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_of_the_paper_config_lists_the_complete_grid():
    out = snakemake("-n", "--configfile", "config/paper.yaml", "--config", "results=/nonexistent/results")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout)
    # 2 datasets x 4 archs x 3 seeds teachers; main grid 2x4x3 bits x5 methods x3 seeds = 360,
    # plus ablation (lsq+sfp, lsq+csd: 6), p sweep (5 new p x 3 seeds: 15; p = 0 is the LSQ+CSD
    # run, p = 0.1 the main FPQ run) and SAM (2 archs x 3: 6).
    assert counts["train_teacher"] == 24
    assert counts["train_qat"] == 360 + 6 + 15 + 6
    assert counts["measure_hessian"] == 2 * 4 * 3 * 2 * 3  # lsq, fpq at p=0.1 for every cell
    assert counts["probe_variance"] == 24 + 2 * 4 * 3 * 2 * 3
    assert counts["index_runs"] == counts["build_tables"] == counts["plot_figures"] == 1
    assert "_p0_" not in out.stdout


@pytest.mark.parametrize("name", ["ci", "paper"])
def test_the_budget_counts_the_jobs_snakemake_runs(tmp_path, name):
    """`fpq budget`'s jobs, per rule and in all, are those of `snakemake -n` from scratch (-F: data
    already downloaded here would drop fetch_data from the dry run, not from a fresh clone's)."""
    from fpq.plan.budget import budget_report, job_counts as budget_jobs
    from fpq.plan.grid import load_workflow_config

    results = str(tmp_path / "results")
    out = snakemake("-n", "-F", "--configfile", f"config/{name}.yaml", "--config", f"results={results}")
    assert out.returncode == 0, out.stderr[-2000:]
    dry = job_counts(out.stdout)
    config = load_workflow_config(REPO / "config" / f"{name}.yaml", {"results": results})
    ours = {rule: n for rule, n in budget_jobs(config).items() if n}
    assert ours == {rule: n for rule, n in dry.items() if rule != "total"}
    report = budget_report(config, REPO / "config" / "epoch_seconds.yaml")
    assert report.startswith(f"jobs: {dry['total']}  ") and sum(ours.values()) == dry["total"]


def test_lint_is_clean():
    out = snakemake("--lint")
    assert out.returncode == 0 and "Congratulations" in out.stdout + out.stderr, out.stdout + out.stderr


def _ci_config() -> dict:
    return yaml.safe_load((REPO / "config" / "ci.yaml").read_text())


@pytest.mark.parametrize("change, key", [
    (lambda c: c.update(epochs=3), "epochs"),
    (lambda c: c["grids"]["main"].update(bits=["w1a4"]), "w1a4"),
    (lambda c: c["grids"]["main"].update(bits=["w4a9"]), "w4a9"),
    (lambda c: c["grids"]["main"].update(archs=["vgg16"]), "vgg16"),
    (lambda c: c["grids"]["main"].update(methods=["apot"]), "apot"),
    (lambda c: c["grids"]["psweep"].update(sfp_p=[0.1, 1.5]), "1.5"),
    (lambda c: c["quant"].update(sfp_p=-0.2), "sfp_p"),
    (lambda c: c["qat"].update(lr=-1), "lr"),
    (lambda c: c["quant"].update(w_bit=4), "w_bit"),
])
def test_invalid_config_is_rejected_before_any_job(tmp_path, change, key):
    config = _ci_config()
    config["results"] = str(tmp_path / "results")
    change(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    out = snakemake("--cores", "1", "--configfile", str(path))
    assert out.returncode != 0
    assert key in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "results").exists()


GPU_SNAKEFILE = """
rule all:
    input: "a.txt", "b.txt"

rule probe:
    output: "{name}.txt"
    resources: gpu=1
    shell: "fpq gpu-slot --hold 3 > {output}"
"""


@pytest.mark.parametrize("gpus, per_gpu, expected", [(2, 1, {"0", "1"}), (1, 2, {"0"})])
def test_jobs_at_once_under_gpu_2_spread_over_the_slot_pool(tmp_path, gpus, per_gpu, expected):
    """Two GPUs: one job each. One GPU with two jobs per GPU: both share it (and both run)."""
    from tests.plan.test_gpu_slots import fake_gpu_box

    (tmp_path / "Snakefile").write_text(GPU_SNAKEFILE)
    env = {**fake_gpu_box(tmp_path, gpus), "FPQ_JOBS_PER_GPU": str(per_gpu)}
    out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=2"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert {(tmp_path / f).read_text().strip() for f in ("a.txt", "b.txt")} == expected


JOB_EVENT = re.compile(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    wildcards: run=(\S+)$|^Finished jobid: \d+ \(Rule: (\w+)\)$", re.M)


def started_jobs(log: str, after_all: str | None = None) -> list[tuple[str, str]]:
    """(rule, run id) of each job of a run, in the order Snakemake started them (its log). With
    after_all, only those started once the last job of that rule had finished: before, only the jobs
    fed by the ones already finished were ready, and priorities order only the ready ones."""
    started, cut = [], 0
    for event in JOB_EVENT.finditer(log):
        if event[3] is None:
            started.append((event[1], event[2]))
        elif event[3] == after_all:
            cut = len(started)
    return started[cut:]


def check_start_order(jobs: list[tuple[str, str]], seeds: list[int]) -> None:
    """fpq.plan.order: QAT runs start seed by seed, and each seed's measurements before the last QAT
    run of the last seed (a seed's measurements outrank every later seed's training; the last seed's
    come after its own runs). Jobs that Snakemake starts in one round may be logged in either order:
    one swap at a boundary."""
    seed_of = [seeds.index(int(rid.rsplit("_s", 1)[1])) for rule, rid in jobs if rule == "train_qat"]
    swaps = sum(a > b for i, a in enumerate(seed_of) for b in seed_of[i + 1:])
    assert swaps <= 1 and sorted(set(seed_of)) == list(range(len(seeds))), seed_of
    last_qat = max(i for i, (rule, _) in enumerate(jobs) if rule == "train_qat")
    late = [job for job in jobs[last_qat:] if job[0] in ("measure_hessian", "probe_variance")
            and seeds.index(int(job[1].rsplit("_s", 1)[1])) < len(seeds) - 1]
    assert len(late) <= 1, late


def test_start_order_counts_the_jobs_started_once_every_teacher_had_finished():
    """CI on 2026-12-05: teacher s1 finished first, so a seed-1 QAT run rightly started before the
    seed-0 ones became ready. Counted from the last teacher's end the order holds; a seed-1 run
    started after it, ahead of ready seed-0 runs, still fails."""
    def start(rule, run):
        return f"[Sat Dec  5 07:08:23 2026]\nrule {rule}:\n    jobid: 1\n    wildcards: run={run}\n    resources: tmpdir=/tmp\n"

    def end(rule):
        return f"[Sat Dec  5 07:08:23 2026]\nFinished jobid: 1 (Rule: {rule})\n1 of 9 steps (11%) done\n"

    log = (start("train_teacher", "fp_s0") + start("train_teacher", "fp_s1") + end("train_teacher")
           + start("train_qat", "lsq_s1") + end("train_teacher")
           + "".join(start("train_qat", f"{m}_s0") for m in ("fpq", "lsq")) + start("train_qat", "fpq_s1"))
    assert started_jobs(log)[:3] == [("train_teacher", "fp_s0"), ("train_teacher", "fp_s1"), ("train_qat", "lsq_s1")]
    with pytest.raises(AssertionError):
        check_start_order(started_jobs(log), [0, 1])
    check_start_order(started_jobs(log, after_all="train_teacher"), [0, 1])
    late_seed1 = log.replace(start("train_qat", "fpq_s0"), start("train_qat", "fpq_s1") + start("train_qat", "fpq_s0"), 1)
    with pytest.raises(AssertionError):
        check_start_order(started_jobs(late_seed1, after_all="train_teacher"), [0, 1])


def write_config(tmp_path, name: str, change=None) -> str:
    config = _ci_config()
    config.update(results=f"{tmp_path}/results", tables=f"{tmp_path}/tables", figures=f"{tmp_path}/figures")
    if change:
        change(config)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def diverging_sam(config):
    config["quant"]["sam_rho"] = 1e6  # SAM's ascent step blows the weights up: both LSQ+SAM runs diverge


@pytest.mark.workflow
def test_ci_config_end_to_end(tmp_path):
    """Every stage on the real mini CIFAR-10 on CPU, with the two LSQ+SAM runs diverging: tables,
    claims and figures are still built with those runs marked failed; then only what changed reruns."""
    out = snakemake("--cores", "2", "--configfile", write_config(tmp_path, "ci", diverging_sam), timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    check_start_order(started_jobs(out.stderr, after_all="train_teacher"), _ci_config()["seeds"])
    tables = tmp_path / "tables"
    for name in ("table1_sam", "table2_ablation", "table3_psweep", "table4_cifar10"):
        assert (tables / f"{name}.md").stat().st_size > 0 and (tables / f"{name}.tex").is_file()
    t4 = (tables / "table4_cifar10.md").read_text()
    for method in ("FP", "PACT", "LSQ", "LSQ+", "KD", "FPQ"):
        ours = r"\d+\.\d\d ± \d+\.\d\d( [†‡]+)?"  # with the flags of fpq.report.flags
        assert re.search(rf"\| ResNet-20 \| (FP|W2A4) +\| {re.escape(method)} +\| +{ours} \| +2 ", t4), method
    table4_run = re.compile(r"resnet20_cifar10_(fp|w2a4_(pact|lsq|lsq\+|kd|fpq_p0\.1))_s\d$")
    main = [json.loads(m.read_text()) for m in (tmp_path / "results" / "runs").glob("*/metrics.json")
            if table4_run.match(m.parent.name)]
    assert len(main) == 12
    at_chance = any(m["status"] == "ok" and m["final"]["top1"] <= 15.0 for m in main)  # 1.5 x 100/10 classes
    assert ("\n† At chance level" in t4) == at_chance  # 500 images, one QAT epoch: mostly near 10%
    t2 = (tables / "table2_ablation.md").read_text()
    assert all(f"| {m} " in t2 for m in ("LSQ", "LSQ+SFP", "LSQ+CSD", "FPQ"))
    t3 = (tables / "table3_psweep.md").read_text()
    assert all(f"| {p} " in t3 for p in ("0", "0.1", "0.5"))
    assert re.search(r"\| LSQ\+SAM +\| +failed \(2\) \| +0 ", (tables / "table1_sam.md").read_text())
    claims = (tables / "claims.md").read_text()
    assert "## 10." in claims and "## Failed runs (2)" in claims and "Missing runs" not in claims
    assert "resnet20_cifar10_w2a4_lsq+sam_s1: DivergenceError" in claims
    for fig in ("fig5_hessian", "fig1_variance"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figures" / f"{fig}.{ext}").stat().st_size > 1000
    runs = tmp_path / "results" / "runs"
    index = json.loads((tmp_path / "results" / "index.json").read_text())
    for rid, run in index["runs"].items():  # every result names its own cell, the one the index planned
        metrics = json.loads((runs / rid / "metrics.json").read_text())
        assert metrics["run_id"] == rid and metrics["cell"] == run["cell"]
        assert metrics["status"] == ("failed" if "lsq+sam" in rid else "ok")
    assert json.loads((runs / "resnet20_cifar10_w2a4_lsq_s0" / "hessian.json").read_text())["cell"]["method"] == "lsq"
    umask = os.umask(0)
    os.umask(umask)
    assert (runs / "resnet20_cifar10_fp_s0" / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~umask

    again = snakemake("-n", "--configfile", write_config(tmp_path, "ci", diverging_sam))
    assert "Nothing to be done" in again.stdout + again.stderr

    # the HTML report, by the README's own command, of the config just run
    command = re.search(r"`snakemake (--report report\.html[^`]*)`", (REPO / "README.md").read_text()).group(1)
    report, config_file = tmp_path / "report.html", write_config(tmp_path, "ci", diverging_sam)
    made = snakemake(*[{"report.html": str(report), "CONFIG": config_file}.get(a, a) for a in command.split()])
    assert made.returncode == 0, made.stderr[-3000:]
    check_report(report.read_text(errors="replace"))

    def reorder_and_probe_kd(config):
        diverging_sam(config)
        config["hessian"] = dict(reversed(list(config["hessian"].items())))  # same values, other order
        config["variance"]["methods"].append("kd")

    changed = job_counts(snakemake("-n", "--configfile", write_config(tmp_path, "ci", reorder_and_probe_kd)).stdout)
    assert changed["probe_variance"] == 2 and "measure_hessian" not in changed and "train_qat" not in changed

    def kd_temperature(config):
        diverging_sam(config)
        config["quant"]["kd_temperature"] = 2.0

    def speed_keys(config):  # they change how fast a run goes, not what it is: no run reruns
        diverging_sam(config)
        config["runtime"]["cuda_graph"] = True
        config["runtime"]["cuda"] = {"teacher_cuda_graph": True, "csd_compile": True}

    dry = snakemake("-n", "--configfile", write_config(tmp_path, "ci", speed_keys)).stdout
    faster = job_counts(dry) if "Job stats:" in dry else {}
    assert not {"train_teacher", "train_qat", "measure_hessian", "probe_variance"} & set(faster), faster

    rerun = snakemake("-n", "--configfile", write_config(tmp_path, "ci", kd_temperature))
    counts = job_counts(rerun.stdout)
    assert counts["train_qat"] == 2 and "train_teacher" not in counts  # the two KD runs only
    assert "resnet20_cifar10_w2a4_kd_s0" in rerun.stdout and "resnet20_cifar10_w2a4_kd_s1" in rerun.stdout
    fixed = job_counts(snakemake("-n", "--configfile", write_config(tmp_path, "ci")).stdout)
    assert fixed["train_qat"] == 2  # back to a sane SAM radius: the two failed SAM runs, nothing else


REPORT_LABELS = {  # what the report lists for config/ci.yaml, by category: Table 5 left out (no CIFAR-100 grid)
    "Tables": {"table1_sam.html": "Table 1 — LSQ+SAM vs FPQ",
               "table2_ablation.html": "Table 2 — ablation of SFP and CSD",
               "table3_psweep.html": "Table 3 — p sweep",
               "table4_cifar10.html": "Table 4 — CIFAR-10, every method"},
    "Claims": {"claims.html": "Claims — a verdict on each claim of the paper"},
    "Figures": {"fig5_hessian.png": "Fig. 5 — Hessian trace by epoch",
                "fig1_variance.png": "Fig. 1 — output variance under input noise",
                "training_curves.png": "Training curves — test top-1 by epoch",
                "loss_composition.png": "Loss composition — CE and CSD by epoch and by tap"},
}


def report_layout(html: str) -> tuple[dict, str]:
    """The report's categories as {category: {subcategory: {file name: label}}}, and the text of its
    workflow description (its front page)."""
    labels = {path: item["labels"]["name"] for path, item in report_items(html).items()}
    categories = json.loads(re.search(r"var categories = (\{.*?\});\s*\n", html, re.S).group(1))
    description = json.loads(re.search(r"var workflow_desc = (\".*?\");\s*\n", html, re.S).group(1))
    return ({cat: {sub: {Path(p).name: labels[p] for p in paths} for sub, paths in subs.items()}
             for cat, subs in categories.items()}, re.sub(r" ([:;,.)])", r"\1", text_of(description)))


def check_layout(html: str, name: str = "ci") -> None:
    layout, description = report_layout(html)
    assert layout == {cat: {f"config {name}": items} for cat, items in REPORT_LABELS.items()}
    assert description.startswith("fpq regenerates the tables of Pang & Cai")
    assert f"This report was made from config {name}: seeds 0, 1; epochs: teacher 2, QAT 1" in description
    assert "Where to start reading: Claims, its summary first" in description


def test_the_report_lists_labelled_tables_claims_and_figures_and_opens_on_what_it_is(tmp_path):
    """`snakemake --report` of the CI config (its outputs stood in for by placeholders: the layout is
    the workflow's, not the files'): each item by its label, under Tables, Claims or Figures and the
    config's subcategory; Table 5, for which the CI config has no grid, not listed; and a front page
    saying what the suite is, which config made the report and where to start."""
    config = write_config(tmp_path, "ci")
    for folder, ext in (("tables", "html"), ("figures", "png")):
        (tmp_path / folder).mkdir()
        names = TABLE_NAMES + ["claims"] if folder == "tables" else ["fig5_hessian", "fig1_variance", "training_curves", "loss_composition"]
        for name in names:
            (tmp_path / folder / f"{name}.{ext}").write_text(f"<p>{name}</p>")
            (tmp_path / folder / f"{name}.caption.rst").write_text(f"{name}\n")
    out = snakemake("--report", str(tmp_path / "report.html"), "--configfile", config)
    assert out.returncode == 0, out.stderr[-3000:]
    check_layout((tmp_path / "report.html").read_text(errors="replace"))


def check_report(html: str) -> None:
    """The report's own HTML, parsed as a browser reads it: each table and the claims are HTML pages
    holding HTML tables with captions, each item has a caption stamped with what made it, and no
    .md, .tex or .pdf duplicates fill the lists; the items are labelled and grouped (check_layout)."""
    check_layout(html)
    items = {Path(path).name: item for path, item in report_items(html).items()}
    pages = [f"{name}.html" for name in TABLE_NAMES + ["claims"] if name not in UNFED]
    figures = ["fig5_hessian.png", "fig1_variance.png", "training_curves.png", "loss_composition.png"]
    assert sorted(items) == sorted(pages + figures)
    for name in pages + figures:
        caption = text_of(items[name]["caption"])
        assert "Made from config ci · " in caption and "500 train / 300 test images" in caption, (name, caption)
    for name in pages:
        assert items[name]["mime_type"] == "text/html"
        tables = html_tables(items[name]["content"].decode())
        assert tables and all(t["caption"].strip() and len(t["rows"]) >= 2 for t in tables), name
    (t2,) = html_tables(items["table2_ablation.html"]["content"].decode())
    assert t2["caption"].startswith("Table 2: Ablation of SFP and CSD") and "Made from config ci" in t2["caption"]
    assert [row[3] for row in t2["rows"][1:]] == ["LSQ", "LSQ+SFP", "LSQ+CSD", "FPQ"]
    claims = html_tables(items["claims.html"]["content"].decode())
    assert claims[0]["caption"] == "Summary" and any(t["caption"].startswith("10. ") for t in claims)


def test_a_given_configfile_is_not_merged_into_the_default(tmp_path):
    def only_main(config):
        config["grids"] = {"main": config["grids"]["main"]}  # config/config.yaml has an ablation grid

    out = snakemake("-n", "--configfile", write_config(tmp_path, "only_main", only_main))
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout)["train_qat"] == 10 and "lsq+sfp" not in out.stdout


def test_the_default_config_is_the_quick_run_in_folders_named_quick():
    out = snakemake("-n")
    assert out.returncode == 0, out.stderr
    assert "results/quick/index.json" in out.stdout and "tables/quick/claims.md" in out.stdout
    assert "results/config/" not in out.stdout


def test_a_typo_in_a_workflow_config_names_the_file_and_the_key_it_meant(tmp_path):
    def typo(config):
        config["grids"]["main"]["method"] = config["grids"]["main"].pop("methods")

    path = write_config(tmp_path, "typo", typo)
    out = snakemake("-n", "--configfile", path)
    assert out.returncode != 0
    expected = f"workflow config {path}: grids.main.method: unknown key (did you mean 'grids.main.methods'?)"
    assert expected in out.stdout + out.stderr  # a dry run logs to stdout


def error_lines(out) -> list[str]:
    """What Snakemake printed, less its notice of the default workflow profile."""
    return [line for line in (out.stdout + out.stderr).splitlines()
            if line.strip() and not line.startswith("Using workflow specific profile")]


def test_a_config_error_under_snakemake_is_one_line(tmp_path):
    def typo(config):
        config["seedz"] = config.pop("seeds")

    path = write_config(tmp_path, "typo", typo)
    out = snakemake("-n", "--configfile", path)
    assert out.returncode == 2
    assert error_lines(out) == [f"fpq: error: workflow config {path}: seedz: unknown key (did you mean 'seeds'?)"]


def test_snakemakes_own_config_overrides_are_typed_as_yaml_would_type_them(tmp_path):
    """`--config qat='{epochs: 2}' seeds='[0]'`: Snakemake hands the nested values over as strings."""
    out = snakemake("-n", "-p", "--configfile", write_config(tmp_path, "ci"), "--config", "qat={epochs: 2}",
                    "seeds=[0]")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    counts = job_counts(out.stdout)
    assert counts["train_teacher"] == 1 and counts["train_qat"] == 9  # one seed of the CI grid
    qat = re.findall(r"fpq qat --config-json '(\{.*?\})'", out.stdout)
    assert len(qat) == 9 and {json.loads(c)["optim"]["epochs"] for c in qat} == {2}
    assert {json.loads(c)["optim"]["lr"] for c in qat} == {_ci_config()["qat"]["lr"]}  # the file's other keys stay


@pytest.mark.parametrize("override, said", [
    ("qat={epochs: two}", "snakemake --config qat={epochs: two}: qat.epochs: 'two' is not of type 'integer'"),
    ("seeds=[0, x]", "snakemake --config seeds=[0, x]: seeds.1: 'x' is not of type 'integer'"),
    ("qat={epoch: 2}", "snakemake --config qat={epoch: 2}: qat.epoch: unknown key (did you mean 'qat.epochs'?)"),
])
def test_a_bad_config_override_is_blamed_on_the_override(tmp_path, override, said):
    out = snakemake("-n", "--configfile", write_config(tmp_path, "ci"), "--config", override)
    assert out.returncode == 2 and error_lines(out) == [f"fpq: error: {said}"]


def test_a_failing_job_shows_its_fpq_error_on_the_console(tmp_path):
    """Every rule writes to its log; the default workflow profile (profiles/default) has Snakemake
    print a failed job's log, so the console names the error, not only `message: None` and a path."""
    (tmp_path / "notzip.npz").write_bytes(b"not a zip archive")

    def bad_data(config):
        config["seeds"] = [0]
        config["data"]["cifar10"]["path"] = str(tmp_path / "notzip.npz")

    out = snakemake("--cores", "1", "--configfile", write_config(tmp_path, "bad_data", bad_data))
    assert out.returncode != 0
    assert "fpq: error: data file" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
    assert "is not a readable .npz archive" in out.stdout + out.stderr


def test_a_config_writes_to_folders_named_after_it(tmp_path):
    config = _ci_config()
    path = tmp_path / "myrun.yaml"
    path.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "--configfile", str(path))
    assert out.returncode == 0, out.stderr
    assert "results/myrun/index.json" in out.stdout and "tables/myrun/claims.md" in out.stdout
    assert "results/ci/" not in out.stdout


def test_a_missing_data_file_names_the_config_key_that_set_it(tmp_path):
    def no_data(config):
        config["data"]["cifar10"]["path"] = str(tmp_path / "nope" / "cifar10.npz")

    out = snakemake("-n", "--configfile", write_config(tmp_path, "no_data", no_data))
    said = out.stdout + out.stderr
    assert out.returncode != 0 and "MissingInputException" not in said
    assert (f"data.cifar10.path: {tmp_path}/nope/cifar10.npz does not exist (looked for {tmp_path}/nope/cifar10.npz); "
            "point it at a CIFAR .npz or use source: torchvision") in said, said[-2000:]
    assert f"workflow config {tmp_path}/no_data.yaml: data.cifar10.path" in said


def test_the_report_without_a_configfile_says_what_to_add(tmp_path):
    """The README's report command without its --configfile, where the default config has not run: one
    line naming the flag to add, not Snakemake's missing-file error. (The project's default output
    folders must not exist for this: they are generated, never committed.)"""
    if (REPO / "tables" / "quick").exists():
        pytest.skip("the quick run's tables exist in this checkout: nothing to refuse (tests/plan/test_checks.py)")
    out = snakemake("--report", str(tmp_path / "report.html"))
    said = out.stdout + out.stderr
    assert out.returncode != 0 and not (tmp_path / "report.html").exists()
    assert "snakemake --report without --configfile reports the default config (quick, config/config.yaml)" in said
    assert "add --configfile CONFIG, the config of the run to report" in said and "marked for report" not in said
    out = snakemake("--report", str(tmp_path / "report.html"), "--configfile", write_config(tmp_path, "not_run"))
    assert "do not exist yet: run the workflow with the same --configfile first" in out.stdout + out.stderr
