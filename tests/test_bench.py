"""The benchmark's own model builders: what they create follows the model's device (checked on `meta`,
which fails like CUDA does on a tensor left behind on the CPU, without a GPU)."""
from itertools import chain
from pathlib import Path

import pytest
import torch

from fpq.method.perturb import attach_sfp
from fpq.models import create_model
from fpq.plan.budget import timings_from_summary
from fpq.quant import prepare_qat
from tests.bench_scripts import load_bench

REPO = Path(__file__).resolve().parent.parent
META = torch.device("meta")


def tensors(model):
    return list(chain(model.parameters(), model.buffers()))


@pytest.mark.parametrize("family", ["lsq", "lsq+", "pact"])
def test_fpqs_quantizers_and_sfp_follow_the_model_onto_its_device(family):
    model = create_model("mobilenetv2", 10).to(META)
    prepare_qat(model, 2, 4, family, fused=True)
    attach_sfp(model, 0.1)
    assert {t.device for t in tensors(model)} == {META}


# ----------------------------------------------------------------------------- gpu_harness.sh
CORE_PATHS = [(p, v) for p in ("fp", "lsq", "fpq", "lsq+csd") for v in ("eager", "graph", "graph-triton")] + [
    ("agree-triton", "graph-triton"), ("agree", "graph"), ("fpq", "share1"), ("fpq", "share2"), ("fpq", "share4"), ("hessian", "graph"),
    ("teacher", "eager"), ("csd", "eager"), ("sfp", "eager"), ("fpq", "config"), ("fpq", "share8")]
SMOKE_ROWS = sorted([("resnet20", p, v) for p, v in CORE_PATHS]
                    + [("mobilenetv1", p, v) for p in ("lsq", "fpq") for v in ("graph", "graph-triton")])


def smoke_harness(out: Path, budget_s: int) -> list[dict]:
    """SMOKE=1 on the CPU, ResNet-20 for the core and one other arch; the rows of its session.json."""
    import json
    import os
    import subprocess

    env = {**os.environ, "SMOKE": "1", "OUT": str(out), "CORE_ARCH": "resnet20", "OTHER_ARCHS": "mobilenetv1",
           "TINY_BOX": "resnet20/lsq/eager", "BUDGET_S": str(budget_s)}
    done = subprocess.run(["bash", "bench/gpu_harness.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / "session.json").read_text())["rows"]


@pytest.mark.slow
def test_the_harness_smoke_run_writes_a_row_for_every_path(tmp_path):
    """Every path gets its row, measured on the CPU; the one given a 1-second box (and more work than
    fits in it) is written "over 1 s"; the summary and the timings file are written from the rows
    (into tmp, never config/). No assertion here depends on the machine's speed."""
    import json
    import subprocess

    out = tmp_path / "out"
    rows = smoke_harness(out, budget_s=1200)
    assert sorted((r["arch"], r["path"], r["variant"]) for r in rows) == SMOKE_ROWS
    by = {(r["arch"], r["path"], r["variant"]): r for r in rows}
    tiny = by.pop(("resnet20", "lsq", "eager"))
    assert tiny["status"] == "over" and tiny["s_per_epoch"] == "over 1 s"
    assert {key: r["status"] for key, r in by.items() if r["status"] != "ok"} == {}, "every other path measured"
    fp = by[("resnet20", "fp", "eager")]
    assert fp["s_per_epoch"] > 0 and fp["build_s"] > 0
    assert fp["runtime"]["compile"] is False and fp["device"].startswith("CPU")
    for p in ("fp", "lsq", "lsq+csd", "fpq"):  # the triton rows ran the kernels, in Triton's interpreter
        assert by[("resnet20", p, "graph-triton")]["kernels_in_force"] == ("torch" if p == "fp" else "triton")
        assert by[("resnet20", p, "graph")]["kernels_in_force"] == "torch"
    kernels = by[("resnet20", "agree-triton", "graph-triton")]["checks"]["triton_vs_torch_50_steps"]
    assert kernels["kernels_in_force"] == ["torch", "triton"] and kernels["loss_max_rel_diff"] < 1e-4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["path"]["variant"] == "eager"  # no captured graph on the CPU: the graph is not chosen
    assert summary["resnet20"]["fp"] == fp["s_per_epoch"] and summary["resnet20"]["lsq"] == "over 1 s"
    assert summary["resnet20"]["build_s"]["fp"] == fp["build_s"]
    tiles = json.loads((out / "tiles.json").read_text())  # the kernels' tiles: the default first, each agreeing
    assert [r["family"] for r in tiles if r["status"] == "ok"][:1] == ["fake_quant"]
    assert {r["family"] for r in tiles} == {"fake_quant", "csd"} and all(r["agrees"] for r in tiles if r["status"] == "ok")
    assert "- fake_quant tiles: " in (out / "report.md").read_text()
    timings = tmp_path / "epoch_seconds.yaml"
    timings.write_text((REPO / "config" / "epoch_seconds.yaml").read_text())
    wrote = subprocess.run(["python", "bench/write_timings.py", "--summary", str(out / "summary.json"),
                            "--out", str(timings)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert wrote.returncode == 0, wrote.stderr
    assert "resnet20: kept its previous row (lsq over 1 s" in wrote.stdout  # no number, no row


@pytest.mark.slow
def test_a_harness_whose_budget_is_spent_writes_every_path_not_run(tmp_path):
    """The budget's tail is written "not run", never left out: here the whole budget (0 s)."""
    import json

    rows = smoke_harness(tmp_path / "out", budget_s=0)
    assert sorted((r["arch"], r["path"], r["variant"]) for r in rows) == SMOKE_ROWS
    assert {(r["status"], r["s_per_epoch"]) for r in rows} == {("skipped", "not run (session budget spent)")}
    assert not (tmp_path / "out" / "tiles.json").exists()  # nor the kernels' tiles
    assert (tmp_path / "out" / "report.md").is_file() and json.loads((tmp_path / "out" / "summary.json").read_text())


def test_timings_from_a_summary_take_measured_archs_only_and_drop_the_estimate():
    previous = {"card": "old card", "archs": {"resnet20": {"fp": 5.0, "qat": 11.0, "qat_teacher": 13.0,
                                                           "estimated": True},
                                              "resnet50": {"fp": 6.0, "qat": 13.0, "qat_teacher": 16.0}}}
    summary = {"resnet20": {"fp": 0.5, "lsq": 0.6, "lsq+csd": 0.7, "fpq": 0.8, "device": "GPU", "variant": "eager",
                            "batch": 256, "torch": "2.x", "runtime": {"bf16": True}},
               "resnet50": {"fp": 2.0, "lsq": "over 35 s", "fpq": 3.0}}
    timings, notes = timings_from_summary(summary, previous)
    r20 = timings["archs"]["resnet20"]
    assert (r20["fp"], r20["qat"], r20["qat_teacher"]) == (0.5, 0.6, 0.8) and "estimated" not in r20
    assert "GPU" in r20["source"] and "eager" in r20["source"] and timings["card"] == r20["source"]
    assert timings["archs"]["resnet50"]["qat"] == 13.0  # kept: its LSQ ran out of its box
    assert notes == ["resnet50: kept its previous row (lsq over 35 s)"]


def test_an_over_row_keeps_the_build_seconds_its_path_recorded(tmp_path):
    bench = load_bench("bench_path")
    json_path = tmp_path / "s.json"
    bench.append_row(json_path, {"arch": "resnet18", "path": "fpq", "variant": "config", "status": "building",
                                 "build_s": 41.5, "s_per_epoch": None})
    bench.main(["--arch", "resnet18", "--path", "fpq", "--variant", "config", "--json", str(json_path), "--over", "60"])
    bench.main(["--arch", "resnet18", "--path", "lsq", "--variant", "config", "--json", str(json_path), "--over", "60"])
    import json
    rows = {r["path"]: r for r in json.loads(json_path.read_text())["rows"]}
    assert len(rows) == 2  # replaced, not duplicated
    assert rows["fpq"]["status"] == "over" and rows["fpq"]["s_per_epoch"] == "over 60 s" and rows["fpq"]["build_s"] == 41.5
    assert rows["lsq"]["build_s"] == "over 60 s"  # it never finished building


@pytest.mark.parametrize("method", ["fp", "fpq"])
def test_the_harness_cell_is_the_workflows_cell_with_or_without_a_schema_validator(monkeypatch, method):
    """bench_path times the RunConfig `fpq qat` gets from config/paper.yaml; on a GPU machine
    without jsonschema it merges the same keys unvalidated, and must arrive at the same config."""
    import fpq.plan.grid as grid

    bench = load_bench("build")
    validated = bench.cell_config("config/paper.yaml", "resnet20", method, 64, {"compile": False}, "cpu")

    def missing(*_a, **_k):
        raise ImportError("no jsonschema here")

    monkeypatch.setattr(grid, "load_workflow_config", missing)
    merged = bench.cell_config("config/paper.yaml", "resnet20", method, 64, {"compile": False}, "cpu")
    assert merged.runtime == validated.runtime and merged.quant == validated.quant
    assert merged.runtime.on("cuda").compile is False and merged.runtime.on("cuda").bf16 is True
    assert merged.runtime.on("cuda").cuda_graph is True  # paper.yaml's CUDA keys
    assert merged.optim.batch_size == validated.optim.batch_size == 64


def test_without_a_schema_validator_the_harness_lays_the_arch_runtime_over_the_runtime(monkeypatch, tmp_path):
    """The unvalidated merge takes the cell's arch_runtime too, as run_config does (config/paper.yaml
    has none, so the test above cannot see it: one is added here)."""
    import yaml

    import fpq.plan.grid as grid

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    paper["arch_runtime"] = {"resnet20": {"channels_last": True, "cuda": {"cuda_graph": False}}}
    workflow = tmp_path / "paper-arch.yaml"
    workflow.write_text(yaml.safe_dump(paper))
    bench = load_bench("build")
    validated = bench.cell_config(str(workflow), "resnet20", "fpq", 64, {"compile": False}, "cpu")

    def missing(*_a, **_k):
        raise ImportError("no jsonschema here")

    monkeypatch.setattr(grid, "load_workflow_config", missing)
    merged = bench.cell_config(str(workflow), "resnet20", "fpq", 64, {"compile": False}, "cpu")
    assert merged.runtime == validated.runtime and merged.quant == validated.quant
    assert merged.runtime.channels_last is True  # the arch_runtime's key
    assert merged.runtime.on("cuda").cuda_graph is False and merged.runtime.on("cuda").bf16 is True  # over paper's


def test_the_agreement_row_compares_every_step_not_the_last_one_fifty_times(monkeypatch):
    """bench/agreement.py through a stand-in graph on the CPU (the replay calls the step again):
    the two students take identical steps, so every loss must agree exactly, and the losses must
    change from step to step. The first GPU run (2026-12-04) stacked the graph's static loss
    tensor 50 times (its last value) and reported a 0.42 relative difference that was not there."""
    import fpq.run.graph as graph
    import fpq.run.train as train
    from tests.run.test_graph_step import ReplayByCall

    sys_path = str(REPO / "bench")
    monkeypatch.syspath_prepend(sys_path)
    monkeypatch.setattr(graph, "CudaGraphBackend", ReplayByCall)
    monkeypatch.setattr(train, "uses_cuda_graph", lambda cfg, device: cfg.runtime.cuda_graph)
    build = load_bench("build")
    agreement = load_bench("agreement")
    cfg = build.cell_config("config/paper.yaml", "resnet20", "fpq", 4, {"compile": False}, "cpu")
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 16).astype(np.int64)
    row = agreement.loss_agreement(cfg, torch.device("cpu"), x, y, steps=6)
    assert row["captured"] and row["failure"] is None
    assert row["loss_max_abs_diff"] == 0.0
    assert row["loss_first"] != row["loss_last_graph"]


def _agree_row(path: str, variant: str, rel: float, **steps) -> dict:
    check = {"agree": "graph_vs_eager", "agree-triton": "triton_vs_torch"}[path]
    return {"arch": "resnet18", "path": path, "variant": variant, "status": "ok", "s_per_epoch": 1.0,
            "checks": {f"{check}_50_steps": {"loss_max_rel_diff": rel, **steps}}}


def _fpq_row(variant: str, seconds: float) -> dict:
    return {"arch": "resnet18", "path": "fpq", "variant": variant, "status": "ok", "s_per_epoch": seconds, "build_s": 5.0}


@pytest.mark.parametrize("graph_rel, triton_s, triton_rel, in_force, chosen", [
    (0.001, 4.0, 0.001, "triton", "graph-triton"),  # agreed with the torch path and faster
    (0.001, 6.0, 0.001, "triton", "graph"),  # agreed, not faster than the torch path's graph
    (0.001, 4.0, 0.5, "triton", "graph"),  # faster, but its losses part from the torch path's
    (0.001, 4.0, 0.001, "torch", "graph"),  # the self-check sent the run down the torch path
    (0.001, None, 0.001, "triton", "graph"),  # FPQ on the kernels not measured
    (0.5, 4.0, 0.001, "triton", "eager"),  # the graph itself did not agree with eager
])
def test_the_campaign_takes_the_triton_kernels_only_where_they_agreed_and_are_faster(graph_rel, triton_s, triton_rel,
                                                                                      in_force, chosen):
    report = load_bench("gpu_report")
    rows = [_agree_row("agree", "graph", graph_rel, captured=True), _fpq_row("eager", 8.0), _fpq_row("graph", 5.0),
            _agree_row("agree-triton", "graph-triton", triton_rel, kernels_in_force=["torch", in_force])]
    rows += [_fpq_row("graph-triton", triton_s)] if triton_s is not None else []
    variant, why = report.choose_variant(rows)
    assert variant == chosen, why
    choice = report.campaign_choice({"path": {"variant": variant}})
    assert choice["CUDA_GRAPH"] == ("false" if chosen == "eager" else "true")
    assert choice["KERNELS"] == ("triton" if chosen == "graph-triton" else "torch")


def test_the_tiles_pick_is_the_fastest_candidate_that_agrees():
    tiles = load_bench("kernel_tiles")
    rows = [{"family": "fake_quant", "fq_tile": 4096, "fq_warps": 4, "status": "ok", "s_per_step": 2.0, "agrees": True},
            {"family": "fake_quant", "fq_tile": 8192, "fq_warps": 8, "status": "ok", "s_per_step": 0.5, "agrees": False},
            {"family": "fake_quant", "fq_tile": 2048, "fq_warps": 8, "status": "ok", "s_per_step": 1.0, "agrees": True},
            {"family": "csd", "csd_block_c": 64, "csd_block_hw": 32, "csd_warps": 8, "status": "failed: OutOfResources"}]
    chosen = tiles.pick(rows)
    assert (chosen["fq_tile"], chosen["fq_warps"]) == (2048, 8)  # the faster one disagreed: never picked
    assert chosen["csd_block_c"] == 32  # no csd row measured: the default
    assert tiles.candidates("csd")[0] == {"csd_block_c": 32, "csd_block_hw": 64, "csd_warps": 4}  # default first
