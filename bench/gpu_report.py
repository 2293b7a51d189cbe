"""Tables and target verdicts from the files a GPU session leaves: `bench/gpu_harness.sh`'s
session.json (round 3: one row per path, each through fpq's own training path) and the older
`bench/gpu_session.sh` files (bench_step / concurrency JSONs).

    python bench/gpu_report.py FOLDER                              # markdown for bench/README.md
    python bench/gpu_report.py FOLDER --summary FOLDER/summary.json  # + s/epoch per arch and path

summary.json: {"resnet18": {"fp": s, "lsq": s, "lsq+csd": s, "fpq": s, "build_s": {path: s}, ...}},
seconds per 50,000-image epoch on the `--variant` path (default eager); a path that ran out of
its box keeps its "over N s" text. bench/write_timings.py --summary writes epoch_seconds.yaml from it.

Rows are named by the runtime keys they ran with, not by the file they came from: plain (the
loop written in bench_step.py), eager (fpq, fused quantizers, fp32), fast (the configs' CUDA keys:
bf16, NHWC, torch.compile of the whole step, fused SGD), fast/op-chain (fast with the fake
quantizers as plain op chains), fast+graphs (fast with CUDA graphs).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAMES = {"fp": "FP", "lsq": "LSQ", "lsq+sfp": "LSQ+SFP", "lsq+csd": "LSQ+CSD", "kd": "KD", "fpq": "FPQ"}
PIECES = ("fp", "lsq", "lsq+sfp", "lsq+csd", "kd", "fpq")


def kind(runtime: dict | None) -> str:
    """plain, eager, eager bf16, fast or fast+graphs; '/op-chain' when the quantizers are op chains."""
    if runtime is None:
        return "plain"
    if not runtime.get("compile"):
        base = "eager bf16" if runtime.get("bf16") else "eager"
    else:
        base = "fast+graphs" if runtime.get("compile_mode") == "reduce-overhead" else "fast"
    return base if runtime.get("fused_quant", True) else f"{base}/op-chain"


def load(folder: Path) -> tuple[list[dict], list[dict], dict]:
    rows, concurrency, meta = [], [], {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "session" in data:  # gpu_harness.sh's rows: read by load_session
            continue
        if "rows" in data:
            rows += [{**r, "kind": kind(r.get("runtime")), "device": data["device"], "torch": data["torch"]}
                     for r in data["rows"]]
        elif "concurrency" in data:
            concurrency += data["concurrency"]
        else:
            meta[path.stem] = data
    return rows, concurrency, meta


def by_kind(rows: list[dict]) -> dict[tuple, float]:
    """(model, method, kind) -> s per epoch (the last file read wins where one repeats)."""
    return {(r["model"], r["method"], r["kind"]): r["s_per_epoch"] for r in rows}


def table(rows: list[dict]) -> str:
    lines = ["| model | method | path | img/s | s/epoch (50k) | peak MB | build s (compile + warm-up) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        peak = f"{r['peak_mb']:,.0f}" if r.get("peak_mb") else "n/a"
        built = f"{r['build_s']:.0f}" if r.get("build_s") is not None else "n/a"
        lines.append(f"| {r['model']} | {NAMES.get(r['method'], r['method'])} | {r['kind']} | "
                     f"{r['images_per_s']:,.0f} | {r['s_per_epoch']:.2f} | {peak} | {built} |")
    return "\n".join(lines)


def breakdown(rows: list[dict], model: str = "resnet18", path: str = "fast") -> str:
    """Each piece of FPQ on one path, as s/epoch and as a multiple of LSQ."""
    t = by_kind(rows)
    lsq = t.get((model, "lsq", path))
    cells = [(NAMES[m], t.get((model, m, path))) for m in PIECES]
    if not lsq or not any(v for _, v in cells):
        return f"(no {model} rows on the {path} path)"
    head = "| " + " | ".join(n for n, _ in cells) + " |"
    return "\n".join([f"{model}, {path} path, s/epoch (x LSQ):", "", head, "|" + "---:|" * len(cells),
                      "| " + " | ".join(f"{v:.2f} ({v / lsq:.2f}x)" if v else "—" for _, v in cells) + " |"])


def verdicts(rows: list[dict], concurrency: list[dict], meta: dict) -> list[str]:
    t = by_kind(rows)
    out = []
    plain18 = t.get(("resnet18", "lsq", "plain"))
    for path in ("eager", "fast", "fast/op-chain"):
        lsq18, fpq18 = t.get(("resnet18", "lsq", path)), t.get(("resnet18", "fpq", path))
        if lsq18 and plain18:
            r = lsq18 / plain18
            out.append(f"- [{path}] ResNet-18 LSQ W2A4 epoch / plain loop's: **{r:.2f}** (target <= 0.3: "
                       f"{'met' if r <= 0.3 else 'not met'})")
        if lsq18 and fpq18:
            r = fpq18 / lsq18
            out.append(f"- [{path}] ResNet-18 FPQ / LSQ epoch: **{r:.2f}** (target <= 1.25: "
                       f"{'met' if r <= 1.25 else 'not met'})")
    fused, chain = t.get(("resnet18", "lsq", "fast")), t.get(("resnet18", "lsq", "fast/op-chain"))
    if fused and chain:
        out.append(f"- under torch.compile, op-chain quantizers / autograd functions: **{chain / fused:.2f}** "
                   f"({'keep the op chain' if chain < fused else 'keep the autograd functions'} on CUDA)")
    for model in sorted({r["model"] for r in rows if r["kind"] == "fast+graphs"}):
        out.append(f"- {model} LSQ with CUDA graphs: **{t.get((model, 'lsq', 'fast+graphs'), float('nan')):.2f} "
                   f"s/epoch**, FPQ {t.get((model, 'fpq', 'fast+graphs'), float('nan')):.2f}")
    for r in concurrency:
        out.append(f"- {r['model']} {r['method']}, {r['jobs']} jobs on one GPU: {r['images_per_s']:,.0f} img/s "
                   f"together, **{r['speedup']:.2f}x** one job")
    policy = meta.get("policy")
    if policy:
        out.append(f"- precision policy {policy['key']}: on {policy['on']} vs off {policy['off']}, difference "
                   f"{policy['diff']:+.2f}, Welch p = {policy['p_value']:.3f}")
    return out


# ----------------------------------------------------------------------------- round 3: gpu_harness.sh
SUMMARY_PATHS = ("fp", "lsq", "lsq+csd", "fpq")
PIECE_PATHS = ("teacher", "csd", "csd-reference", "sfp")
BUILD_LIMIT_S = 60.0


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


def _seconds(rows: list[dict], arch: str, path: str, variant: str):
    """The row's s/epoch: a number when measured, its text ("over 30 s", "not run ...") otherwise."""
    row = next((r for r in rows if (r["arch"], r["path"], r.get("variant", "")) == (arch, path, variant)), None)
    if row is None:
        return None
    return row["s_per_epoch"] if row["status"] == "ok" else row["s_per_epoch"] or row["status"]


def _measured(rows: list[dict], arch: str, paths: tuple[str, ...], variant: str) -> dict:
    """{path: s/epoch or its text} of the paths that have a row."""
    found = {p: _seconds(rows, arch, p, variant) for p in paths}
    return {p: v for p, v in found.items() if v is not None}


def summary(rows: list[dict], variant: str = "eager") -> dict:
    """Per arch: s/epoch of FP, LSQ, LSQ+CSD and FPQ on one variant, FPQ's pieces, and the build
    seconds of every path measured (`path` on that variant, `path@other` on the others)."""
    out = {}
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch]
        entry, pieces = (_measured(mine, arch, paths, variant) for paths in (SUMMARY_PATHS, PIECE_PATHS))
        if pieces:
            entry["pieces"] = pieces
        entry["build_s"] = {(r["path"] if r.get("variant", "") == variant else f"{r['path']}@{r.get('variant', '')}"):
                            r.get("build_s") for r in mine}
        ok = [r for r in mine if r["status"] == "ok" and r.get("variant", "") == variant]
        if ok:
            entry["variant"], entry["device"], entry["torch"] = variant, ok[0].get("device"), ok[0].get("torch")
            entry["runtime"] = ok[0].get("runtime")
            entry["batch"] = ok[0].get("batch")
        out[arch] = entry
    return out


def session_verdicts(rows: list[dict], variant: str = "eager") -> list[str]:
    """The issue's targets for ResNet-18 W2A4, from one side-by-side session; never asserted in a test."""
    s = summary([r for r in rows if r["arch"] == "resnet18"], variant).get("resnet18", {})
    num = {k: v for k, v in s.items() if isinstance(v, (int, float)) and k != "batch"}
    out = []
    if str(s.get("device", "")).startswith("CPU"):
        out.append("- (a CPU run: the plumbing only; the targets are for the H200, these are not their figures)")

    def verdict(name, value, limit, unit=""):
        out.append(f"- {name}: **{value:.2f}{unit}** (target <= {limit:.2f}{unit}: {'met' if value <= limit else 'not met'})")

    if "fp" in num:
        verdict(f"[{variant}] ResNet-18 FP s/epoch", num["fp"], 1.3, " s")
    if "fp" in num and "lsq" in num:
        verdict(f"[{variant}] LSQ / FP", num["lsq"] / num["fp"], 1.25)
    for m in ("fpq", "lsq+csd"):
        if m in num and "lsq" in num:
            verdict(f"[{variant}] {m.upper()} / LSQ", num[m] / num["lsq"], 1.25)
    for r in rows:
        if r["arch"] == "resnet18" and r.get("variant") != variant:
            b = r.get("build_s")
            state = f"{b:.0f} s" if isinstance(b, (int, float)) else str(b)
            out.append(f"- build of resnet18 {r['path']} [{r.get('variant')}]: {state} (limit {BUILD_LIMIT_S:.0f} s)")
    for r in rows:
        for name, check in (r.get("checks") or {}).items():
            shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in check.items())
            out.append(f"- check {name} ({r['arch']} {r['path']} [{r.get('variant')}]): {shown}")
    missing = [p for p in SUMMARY_PATHS if p not in num]
    if missing:
        out.append(f"- unmeasured on [{variant}]: {', '.join(missing)} (see their rows)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--summary", help="write summary.json (s/epoch per arch and path) here")
    p.add_argument("--variant", default="eager", help="the harness variant the summary reads (eager, config, ...)")
    args = p.parse_args(argv)
    session = load_session(Path(args.folder))
    if session:
        if args.summary:
            Path(args.summary).write_text(json.dumps(summary(session, args.variant), indent=2) + "\n")
        print(session_table(session) + "\n")
        print("\n".join(session_verdicts(session, args.variant)))
    rows, concurrency, meta = load(Path(args.folder))
    if not rows:
        if session:
            return 0
        print(f"no benchmark rows in {args.folder}", file=sys.stderr)
        return 1
    devices = sorted({f"{r['device']} (torch {r['torch']})" for r in rows})
    print("Device: " + "; ".join(devices) + "\n")
    print(table(rows) + "\n")
    print(breakdown(rows) + "\n")
    print("\n".join(verdicts(rows, concurrency, meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
