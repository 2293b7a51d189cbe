"""Tables and claims from synthetic run folders (the numbers are chosen so the answers are known)."""
import math
from pathlib import Path

import pytest

from fpq.config import load_config, to_dict
from fpq.grid import parse_run_id, qat_id, teacher_id
from fpq.io import write_json
from fpq.results import Stat, compare
from fpq.tables import build_tables

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "config" / "reference_tables.csv"


def write_run(results: Path, arch, dataset, method, bits, seed, top1, p=0.1, trace=None, trajectory=()):
    w, a = bits
    data = {"dataset": dataset, "source": "npz", "path": "x.npz"}
    if method == "fp":
        rid = teacher_id(arch, dataset, seed)
        cfg = load_config({"arch": arch, "method": "fp", "seed": seed, "run_id": rid, "data": data})
    else:
        rid = qat_id(arch, dataset, f"w{w}a{a}", method, p, seed)
        cfg = load_config({"arch": arch, "method": method, "seed": seed, "run_id": rid, "teacher": "t.pt",
                           "data": data, "quant": {"w_bits": w, "a_bits": a, "sfp_p": p}})
    folder = results / "runs" / rid
    write_json(folder / "metrics.json", {"run_id": rid, "config": to_dict(cfg), "final": {"top1": top1},
                                         "best": {"top1": top1 + 0.5, "epoch": 3},
                                         "hessian_trajectory": list(trajectory)})
    if trace is not None:
        write_json(folder / "hessian.json", {"trace": {"mean": trace, "stderr": 1.0, "probes": 8}})
    return rid


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    for seed, (fp, lsq, fpq) in enumerate([(95.0, 90.0, 93.0), (95.2, 90.2, 93.2), (94.8, 89.8, 92.8)]):
        write_run(r, "resnet18", "cifar10", "fp", (32, 32), seed, fp)
        write_run(r, "resnet18", "cifar10", "lsq", (2, 4), seed, lsq, trace=5000.0 + seed)
        write_run(r, "resnet18", "cifar10", "fpq", (2, 4), seed, fpq, trace=3000.0 + seed)
        write_run(r, "resnet18", "cifar10", "lsq+sfp", (2, 4), seed, lsq + 1.0)
        write_run(r, "resnet18", "cifar10", "lsq+csd", (2, 4), seed, lsq + 2.0)
        for p, gain in ((0.0, 2.0), (0.3, 3.5), (1.0, 1.0)):
            write_run(r, "resnet18", "cifar10", "fpq", (2, 4), seed, lsq + gain, p=p)
    return r


def read(out: Path, name: str) -> str:
    return (out / name).read_text()


def test_comparison_table_has_mean_std_n_paper_and_difference(results, tmp_path):
    out = tmp_path / "tables"
    build_tables(results, out, REFERENCE)
    md = read(out, "table4_cifar10.md")
    assert "| resnet18 | FP     | fp       | 95.00 ± 0.20        | 3   | 88.72   | +6.28" in md
    assert "| resnet18 | W2A4   | lsq      | 90.00 ± 0.20        | 3   | 88.36   | +1.64" in md
    assert "| resnet18 | W2A4   | fpq      | 93.00 ± 0.20        | 3   | 89.92   | +3.08" in md
    assert "| resnet18 | W2A4   | pact     | missing             | 0   | 87.55   | —" in md
    tex = read(out, "table4_cifar10.tex")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "90.00 $\\pm$ 0.20" in tex
    assert "No runs for this table" in read(out, "table5_cifar100.md")


def test_ablation_psweep_and_best_epoch_option(results, tmp_path):
    out = tmp_path / "tables"
    build_tables(results, out, REFERENCE)
    ablation = read(out, "table2_ablation.md")
    assert "lsq+sfp  | 91.00 ± 0.20" in ablation and "89.30" in ablation
    psweep = read(out, "table3_psweep.md")
    for p, mean, paper in (("0", "92.00", "89.66"), ("0.1", "93.00", "89.92"), ("0.3", "93.50", "89.90"),
                           ("1", "91.00", "89.48")):
        assert f"| {p}" in psweep and mean in psweep and paper in psweep
    build_tables(results, tmp_path / "best", REFERENCE, metric="best")
    assert "90.50 ± 0.20" in read(tmp_path / "best", "table4_cifar10.md")
    assert "best-epoch" in read(tmp_path / "best", "table4_cifar10.md")


def test_claims_verdicts(results, tmp_path):
    out = tmp_path / "tables"
    build_tables(results, out, REFERENCE)
    claims = read(out, "claims.md")
    section = lambda n: claims.split(f"## {n}.")[1].split("## ")[0]  # noqa: E731
    assert "holds" in section(1) and "does not hold" not in section(1)  # FPQ +3.0 over LSQ, sd 0.2
    assert "does not hold" in section(2)  # 93 < 95
    assert "| holds" in section(3)  # 90 < 91 < 92 < 93
    assert "0.3" in section(4) and "holds" in section(4)
    assert "holds" in section(5) and "-2000" not in section(5)  # lower trace is the gain: +2000


def test_missing_failed_and_truncated_runs_are_reported_not_invented(results, tmp_path):
    # A run killed while writing leaves only a temporary file: it must not count.
    rid = qat_id("resnet18", "cifar10", "w2a4", "kd", 0.1, 0)
    folder = results / "runs" / rid
    folder.mkdir(parents=True)
    (folder / ".metrics.json.x1y2.tmp").write_text('{"run_id": "' + rid + '", "final": {"to')
    # A diverged run leaves failed.json.
    failed = qat_id("resnet18", "cifar10", "w2a4", "pact", 0.1, 0)
    cfg = load_config({"arch": "resnet18", "method": "pact", "run_id": failed, "teacher": "t.pt",
                       "data": {"source": "npz", "path": "x"}, "quant": {"w_bits": 2, "a_bits": 4}})
    write_json(results / "runs" / failed / "failed.json", {"run_id": failed, "error": "DivergenceError: nan",
                                                           "config": to_dict(cfg)})
    # A metrics.json cut short by something that did not write atomically.
    broken = results / "runs" / "resnet18_cifar10_w2a4_lsq+_s0"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"config": {"arch"')
    out = tmp_path / "tables"
    build_tables(results, out, REFERENCE, expected=[rid, failed, "resnet18_cifar10_w2a4_lsq+_s0"])
    md = read(out, "table4_cifar10.md")
    assert "| kd       | missing" in md and "| pact     | failed" in md
    assert f"- {rid}" in md and f"- {failed}" in md
    claims = read(out, "claims.md")
    assert "DivergenceError: nan" in claims and "resnet18_cifar10_w2a4_lsq+_s0" in claims.split("Unreadable")[1]


def test_run_ids_parse_back():
    assert parse_run_id("resnet18_cifar10_w2a4_fpq_p0.1_s2") == {
        "arch": "resnet18", "dataset": "cifar10", "method": "fpq", "seed": 2, "w_bits": 2, "a_bits": 4, "p": 0.1}
    assert parse_run_id("mobilenetv2_cifar100_fp_s0")["w_bits"] == 32
    assert parse_run_id("lsq+_w2a4_s0") is None


def test_welch_verdicts():
    a, b = Stat(91.0, 0.2, 3), Stat(90.0, 0.2, 3)
    assert compare(a, b)[0] == "holds" and compare(b, a)[0] == "does not hold"
    assert compare(Stat(90.1, 1.0, 3), b)[0] == "within seed noise"
    assert compare(Stat(91.0, math.nan, 1), b)[0].startswith("undetermined")
    assert compare(Stat(10.0, 0.1, 3), Stat(12.0, 0.1, 3), higher_is_better=False)[0] == "holds"
