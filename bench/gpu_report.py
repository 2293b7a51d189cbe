"""Tables, target verdicts and summary.json from the rows `bench/gpu_harness.sh` leaves (session.json).

    python bench/gpu_report.py FOLDER                              # markdown for bench/README.md
    python bench/gpu_report.py FOLDER --summary FOLDER/summary.json  # + s/epoch per arch and path

summary.json: {"resnet18": {"fp": s, "lsq": s, "lsq+csd": s, "fpq": s, "variant": ..., "build_s": {...},
"pieces": {...}}, ..., "sharing": {"resnet18": [{"jobs": k, "mps": bool, "speedup": x}, ...]},
"path": {"variant": "graph" or "eager", "why": ...}}: seconds per 50,000-image epoch on the path
the runs should take (`--variant auto`: the CUDA graph when it agreed with eager and is faster
including its build, with the Triton kernels (`graph-triton`) when they agreed with the torch path
and are faster still, else eager); a path that ran out of its box keeps its "over N s" text.
bench/write_timings.py --summary writes config/epoch_seconds.yaml from it.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # fpq.kernels.tuning (torch-free), for the tiles' pick
    sys.path.insert(0, str(REPO))

SUMMARY_PATHS = ("fp", "lsq", "lsq+csd", "fpq")
PIECE_PATHS = ("teacher", "csd", "csd-reference", "sfp", "hessian")
BUILD_LIMIT_S = 10.0
AGREE_LOSS_REL = 0.02  # 50 steps' losses, graph against eager: bf16 rounding, not another model
AGREE_ACC_POINTS = 2.0  # one epoch's test accuracy: within seed noise


def load_session(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "session" in data:
            rows += data["rows"]
    return rows


def _shown(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value) if value is not None else "—"


def session_table(rows: list[dict]) -> str:
    lines = ["| arch | path | variant | s/epoch (50k) | build s | status | device |", "|---|---|---|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['path']} | {r.get('variant', '')} | {_shown(r.get('s_per_epoch'))} | "
                     f"{_shown(r.get('build_s'))} | {r['status']} | {r.get('device', '')} |")
    return "\n".join(lines)


def _row(rows: list[dict], arch: str, path: str, variant: str) -> dict | None:
    return next((r for r in rows if (r["arch"], r["path"], r.get("variant", "")) == (arch, path, variant)), None)


def _seconds(rows: list[dict], arch: str, path: str, variant: str):
    """The row's s/epoch: a number when measured, its text ("over 30 s", "not run ...") otherwise."""
    row = _row(rows, arch, path, variant)
    if row is None:
        return None
    return row["s_per_epoch"] if row["status"] == "ok" else row["s_per_epoch"] or row["status"]


# agreement row -> (its variant, its checks' name, path a's name, path b's name) as bench/agreement.py writes them
AGREE_ROWS = {"agree": ("graph", "graph_vs_eager", "eager", "graph"),
              "agree-triton": ("graph-triton", "triton_vs_torch", "torch", "triton")}


def agreement(rows: list[dict], arch: str = "resnet18", path: str = "agree") -> tuple[bool, str]:
    """Whether the graph step agreed with eager (the `agree` row), or the Triton kernels with the
    torch path (`agree-triton`), and why or why not."""
    variant, check, other, new = AGREE_ROWS[path]
    row = _row(rows, arch, path, variant)
    if row is None or row["status"] != "ok":
        return False, f"no {path} row ({row['s_per_epoch'] if row else 'absent'})"
    steps = row["checks"][f"{check}_50_steps"]
    if path == "agree" and not steps.get("captured"):
        return False, f"the graph was not captured ({steps.get('failure')})"
    if path == "agree-triton" and steps.get("kernels_in_force", ["torch", "triton"])[-1] != "triton":
        return False, "the kernels did not run (their self-check failed: see the row's log)"
    why = f"50 steps' losses differ by at most {steps['loss_max_rel_diff']:.2g} (relative; limit {AGREE_LOSS_REL})"
    ok = steps["loss_max_rel_diff"] <= AGREE_LOSS_REL
    epoch = row["checks"].get(f"{check}_one_epoch")
    if epoch:
        ok = ok and abs(epoch["test_acc_diff"]) <= AGREE_ACC_POINTS
        why += (f"; one epoch: test accuracy {epoch[new]['test_acc']:.2f}% ({new}) vs "
                f"{epoch[other]['test_acc']:.2f}% ({other}), limit {AGREE_ACC_POINTS} points")
    return ok, why


def _fpq_cost(rows: list[dict], arch: str, variant: str) -> float | None:
    """FPQ's s/epoch on a variant with its build spread over 10 epochs; None when not measured."""
    row = _row(rows, arch, "fpq", variant)
    if row is None or row["status"] != "ok":
        return None
    return row["s_per_epoch"] + (row.get("build_s") or 0) / 10


def choose_variant(rows: list[dict], arch: str = "resnet18") -> tuple[str, str]:
    """'graph' when it agreed with eager and its FPQ epoch (build included, over 10 epochs) is
    faster than eager's, 'graph-triton' when the Triton kernels then also agreed with the torch
    path and are faster still; else 'eager'. Returns (variant, why)."""
    ok, why = agreement(rows, arch)
    if not ok:
        return "eager", f"graph not used: {why}"
    cost = {v: _fpq_cost(rows, arch, v) for v in ("eager", "graph", "graph-triton")}
    for variant in ("eager", "graph"):
        if cost[variant] is None:
            return ("eager" if variant == "graph" else "graph"), f"fpq [{variant}] not measured"
    if cost["graph"] >= cost["eager"]:
        return "eager", f"graph agreed but is not faster ({cost['graph']:.2f} vs {cost['eager']:.2f} s/epoch)"
    chosen = f"graph agreed ({why}) and FPQ costs {cost['graph']:.2f} vs {cost['eager']:.2f} s/epoch"
    kernels_ok, kernels_why = agreement(rows, arch, "agree-triton")
    if not kernels_ok or cost["graph-triton"] is None:
        unused = kernels_why if not kernels_ok else "fpq [graph-triton] not measured"
        return "graph", chosen + f"; Triton kernels not used: {unused}"
    if cost["graph-triton"] >= cost["graph"]:
        return "graph", chosen + f"; Triton kernels agreed but are not faster ({cost['graph-triton']:.2f} s/epoch)"
    return "graph-triton", chosen + f"; Triton kernels agreed ({kernels_why}) and FPQ costs {cost['graph-triton']:.2f}"


def jobs(row: dict) -> int | None:
    """k of a sharing row: its `jobs`, or the harness's variant name `share<k>[-mps]` (the one-job
    row of 2026-12-04 was timed in one process and recorded no `jobs`)."""
    match = re.fullmatch(r"share(\d+)(-mps)?", row.get("variant", ""))
    return row.get("jobs") or (int(match.group(1)) if match else None)


def sharing(rows: list[dict]) -> dict:
    """Per arch: each sharing row's throughput as a multiple of the one-job row of the same run."""
    out = {}
    for arch in dict.fromkeys(r["arch"] for r in rows):
        shared = [{**r, "jobs": jobs(r)} for r in rows if r["arch"] == arch and jobs(r) and r["status"] == "ok"]
        one = next((r for r in shared if r["jobs"] == 1), None)
        if one is None:
            continue
        out[arch] = [{"jobs": r["jobs"], "mps": bool(r.get("mps")), "path": r["path"], "variant": r["variant"],
                      "images_per_s": round(r["images_per_s"], 1),
                      "speedup": round(r["images_per_s"] / one["images_per_s"], 3)} for r in shared]
    return out


def summary(rows: list[dict], variant: str = "auto") -> dict:
    """Per arch: s/epoch of FP, LSQ, LSQ+CSD and FPQ on one variant, FPQ's pieces, the build
    seconds of every path (`path` on that variant, `path@other` on the others); GPU sharing; the
    variant chosen and why."""
    why = "asked for"
    if variant == "auto":
        variant, why = choose_variant(rows)
    out = {}
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch and not jobs(r)]
        entry = {p: v for p in SUMMARY_PATHS if (v := _seconds(mine, arch, p, variant)) is not None}
        pieces = {p: v for p in PIECE_PATHS for var in (variant, "eager", "graph")
                  if (v := _seconds(mine, arch, p, var)) is not None}
        if pieces:
            entry["pieces"] = pieces
        entry["build_s"] = {(r["path"] if r.get("variant", "") == variant else f"{r['path']}@{r.get('variant', '')}"):
                            r.get("build_s") for r in mine}
        ok = [r for r in mine if r["status"] == "ok" and r.get("variant", "") == variant]
        if ok:
            entry["variant"], entry["device"], entry["torch"] = variant, ok[0].get("device"), ok[0].get("torch")
            entry["runtime"], entry["batch"] = ok[0].get("runtime"), ok[0].get("batch")
        out[arch] = entry
    shares = sharing(rows)
    if shares:
        out["sharing"] = shares
    out["path"] = {"variant": variant, "why": why}
    return out


def session_verdicts(rows: list[dict], variant: str = "auto") -> list[str]:
    """The speed issue's targets for ResNet-18 W2A4, from one side-by-side session; never asserted in a test."""
    s = summary([r for r in rows if r["arch"] == "resnet18"], variant)
    variant = s["path"]["variant"]
    r18 = s.get("resnet18", {})
    num = {k: v for k, v in r18.items() if isinstance(v, (int, float)) and k != "batch"}
    out = [f"- path: **{variant}** ({s['path']['why']})"]
    if str(r18.get("device", "")).startswith("CPU"):
        out.append("- (a CPU run: the plumbing only; the targets are for the H200, these are not their figures)")

    def verdict(name, value, limit, unit=""):
        out.append(f"- {name}: **{value:.2f}{unit}** (target <= {limit:.2f}{unit}: {'met' if value <= limit else 'not met'})")

    if "fp" in num and "lsq" in num:  # the Triton issue's goals (graph path, ResNet-18 W2A4)
        verdict(f"[{variant}] LSQ / FP", num["lsq"] / num["fp"], 1.3)
    if "lsq+csd" in num and "lsq" in num:
        verdict(f"[{variant}] LSQ+CSD / LSQ", num["lsq+csd"] / num["lsq"], 1.3)
    if "fpq" in num and "lsq+csd" in num:
        verdict(f"[{variant}] FPQ / LSQ+CSD", num["fpq"] / num["lsq+csd"], 1.05)
    for m in SUMMARY_PATHS:
        torch_s, triton_s = (_seconds(rows, "resnet18", m, v) for v in ("graph", "graph-triton"))
        if isinstance(torch_s, (int, float)) and isinstance(triton_s, (int, float)):
            out.append(f"- {m}: Triton kernels {triton_s:.2f} vs torch path {torch_s:.2f} s/epoch on the graph "
                       f"(**{torch_s / triton_s:.2f}x**)")
    for m in SUMMARY_PATHS:
        eager, graph = (_seconds(rows, "resnet18", m, v) for v in ("eager", "graph"))
        if isinstance(eager, (int, float)) and isinstance(graph, (int, float)):
            out.append(f"- {m}: graph {graph:.2f} vs eager {eager:.2f} s/epoch (**{eager / graph:.2f}x**)")
    for r in rows:
        if r["arch"] == "resnet18" and r["path"] in SUMMARY_PATHS and not jobs(r):
            b = r.get("build_s")
            if isinstance(b, (int, float)):
                out.append(f"- build of {r['path']} [{r.get('variant')}]: {b:.1f} s (limit {BUILD_LIMIT_S:.0f} s: "
                           f"{'met' if b <= BUILD_LIMIT_S else 'not met'})")
    hessian = r18.get("pieces", {}).get("hessian")
    if isinstance(hessian, (int, float)) and "fpq" in num:
        out.append(f"- one Hessian-trajectory point: {hessian:.2f} s, **{hessian / (hessian + num['fpq']):.0%}** of an "
                   f"FPQ epoch with it")
    for row in s.get("sharing", {}).get("resnet18", []):
        line = f"- {row['jobs']} {row['path']} jobs sharing the GPU{' (MPS)' if row['mps'] else ''}: {row['speedup']:.2f}x one job"
        out.append(line + (f" (target >= 1.50: {'met' if row['speedup'] >= 1.5 else 'not met'})" if row["jobs"] == 4 else ""))
    ok, why = agreement(rows)
    out.append(f"- graph vs eager: {'agree' if ok else 'NOT shown to agree'} ({why})")
    ok, why = agreement(rows, path="agree-triton")
    out.append(f"- Triton kernels vs torch path: {'agree' if ok else 'NOT shown to agree'} ({why})")
    missing = [p for p in SUMMARY_PATHS if p not in num]
    if missing:
        out.append(f"- unmeasured on [{variant}]: {', '.join(missing)} (see their rows)")
    return out


def tiles_pick(folder: Path) -> str:
    """The FPQ_KERNEL_TUNING value of the harness's tile rows (tiles.json; '' for the defaults)."""
    from kernel_tiles import pick, read_rows

    from fpq.kernels.tuning import spell

    return spell(pick(read_rows(folder / "tiles.json")))


def tiles_lines(folder: Path) -> list[str]:
    """The report's lines on the kernels' tiles: each family's fastest agreeing candidate against the default."""
    from kernel_tiles import FAMILIES, fastest, read_rows

    from fpq.kernels.tuning import DEFAULT

    rows = read_rows(folder / "tiles.json")
    out = []
    for family, keys in FAMILIES.items():
        ok = [r for r in rows if r["family"] == family and r["status"] == "ok"]
        default = next((r for r in ok if all(r[k] == DEFAULT[k] for k in keys)), None)
        best = fastest(rows, family)
        if default and best:
            name = ", ".join(f"{k}={best[k]}" for k in keys)
            disagreeing = sum(not r["agrees"] for r in ok)
            out.append(f"- {family} tiles: {name} {1e3 * best['s_per_step']:.2f} ms a step against the default's "
                       f"{1e3 * default['s_per_step']:.2f} ms (**{default['s_per_step'] / best['s_per_step']:.2f}x**; "
                       f"{len(ok)} candidates, {disagreeing} disagreeing)")
    return out


def campaign_choice(summary: dict, arch: str = "resnet18", floor: int = 3) -> dict:
    """What the reference run takes from the harness: the CUDA graph or not, the Triton kernels or
    the torch path (triton only where it agreed and was faster), and jobs per GPU (the
    best measured sharing when it pays by > 5%, MPS with it if that row was MPS; else `floor` jobs,
    which only overlap each job's start, CPU-bound, with the others' training)."""
    rows = summary.get("sharing", {}).get(arch, [])
    best = max(rows, key=lambda r: r["speedup"], default=None)
    pays = best is not None and best["jobs"] > 1 and best["speedup"] > 1.05
    variant = summary["path"]["variant"]
    return {"CUDA_GRAPH": "true" if variant.startswith("graph") else "false",
            "KERNELS": "triton" if variant == "graph-triton" else "torch",
            "JOBS_PER_GPU": best["jobs"] if pays else floor, "FPQ_MPS": int(bool(pays and best["mps"]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--summary", help="write summary.json (s/epoch per arch and path) here")
    p.add_argument("--variant", default="auto", help="the variant the summary reads: auto, eager, graph, config")
    p.add_argument("--choose", action="store_true",
                   help="print the reference run's choices (CUDA_GRAPH, KERNELS, JOBS_PER_GPU, FPQ_MPS) as shell assignments")
    args = p.parse_args(argv)
    session = load_session(Path(args.folder))
    if not session:
        print(f"no benchmark rows in {args.folder}", file=sys.stderr)
        return 1
    if args.choose:
        choice = campaign_choice(summary(session, args.variant))
        if choice["KERNELS"] == "triton":
            choice["KERNEL_TUNING"] = f"'{tiles_pick(Path(args.folder))}'"
        print("\n".join(f"{k}={v}" for k, v in choice.items()))
        return 0
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary(session, args.variant), indent=2) + "\n")
    print(session_table(session) + "\n")
    print("\n".join(session_verdicts(session, args.variant) + tiles_lines(Path(args.folder))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
