"""Tables and target verdicts from the files `bench/gpu_session.sh` leaves (any bench_step JSONs).

    python bench/gpu_report.py FOLDER      # markdown for bench/README.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAMES = {"fp": "FP", "lsq": "LSQ W2A4", "fpq": "FPQ W2A4"}


def load(folder: Path) -> tuple[list[dict], dict]:
    rows, meta = [], {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "rows" in data:
            rows += [{**r, "device": data["device"], "torch": data["torch"]} for r in data["rows"]]
        else:
            meta[path.stem] = data
    return rows, meta


def table(rows: list[dict]) -> str:
    lines = ["| model | method | path | img/s | s/epoch (50k) | peak MB | ratio |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        peak = f"{r['peak_mb']:,.0f}" if r["peak_mb"] else "n/a"
        if r.get("ratio_fpq_over_plain"):
            ratio = f"{r['ratio_fpq_over_plain']:.2f} of plain"
        elif r.get("ratio_over_fpq"):
            ratio = f"{r['ratio_over_fpq']:.2f} of fpq"
        else:
            ratio = ""
        lines.append(f"| {r['model']} | {NAMES.get(r['method'], r['method'])} | {r['path']} | "
                     f"{r['images_per_s']:,.0f} | {r['s_per_epoch']:.2f} | {peak} | {ratio} |")
    return "\n".join(lines)


def verdicts(rows: list[dict], meta: dict) -> list[str]:
    by = {(r["model"], r["method"], r["path"]): r["s_per_epoch"] for r in rows}
    plain18 = by.get(("resnet18", "lsq", "plain"))
    batch20 = sorted({r["batch"] for r in rows if r["model"] == "resnet20"})
    out = []
    for path in sorted({r["path"] for r in rows if r["path"] != "plain"}):
        lsq18, fpq18, lsq20 = (by.get(key + (path,)) for key in
                               (("resnet18", "lsq"), ("resnet18", "fpq"), ("resnet20", "lsq")))
        if lsq18 and plain18:
            r = lsq18 / plain18
            out.append(f"- [{path}] ResNet-18 LSQ epoch / plain loop's: **{r:.2f}** (target <= 0.5: "
                       f"{'met' if r <= 0.5 else 'not met'})")
        if lsq18 and fpq18:
            r = fpq18 / lsq18
            out.append(f"- [{path}] ResNet-18 FPQ epoch / LSQ epoch: **{r:.2f}** (target <= 1.25: "
                       f"{'met' if r <= 1.25 else 'not met'})")
        if lsq20:
            out.append(f"- [{path}] ResNet-20 LSQ at batch {batch20}: **{lsq20:.2f} s/epoch** (target <= 1.0: "
                       f"{'met' if lsq20 <= 1.0 else 'not met'})")
    policy = meta.get("policy")
    if policy:
        out.append(f"- precision policy {policy['key']}: on {policy['on']} vs off {policy['off']}, difference "
                   f"{policy['diff']:+.2f}, Welch p = {policy['p_value']:.3f}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    args = p.parse_args(argv)
    rows, meta = load(Path(args.folder))
    if not rows:
        print(f"no benchmark rows in {args.folder}", file=sys.stderr)
        return 1
    devices = sorted({f"{r['device']} (torch {r['torch']})" for r in rows})
    print("Device: " + "; ".join(devices) + "\n")
    print(table(rows) + "\n")
    print("\n".join(verdicts(rows, meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
