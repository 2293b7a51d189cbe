"""Tables and target verdicts from the files `bench/gpu_session.sh` leaves (any bench_step / concurrency JSONs).

    python bench/gpu_report.py FOLDER      # markdown for bench/README.md

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    args = p.parse_args(argv)
    rows, concurrency, meta = load(Path(args.folder))
    if not rows:
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
