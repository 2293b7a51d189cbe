"""`fpq status` on the whole paper grid, every run done with 200 epochs of history, against a fresh
interpreter that only imports fpq's CLI: CPU seconds of each (the least of --rounds interleaved
tries: other work on the machine only ever adds time), their ratio and the cost per run.

    python bench/bench_status.py [--configfile config/paper.yaml] [--rounds 5]

The test (tests/plan/test_status.py) checks what keeps it fast as invariants instead of a clock:
no torch, one read per run, each config class's type hints resolved once.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fpq.io import write_json  # noqa: E402
from fpq.plan.grid import expand, load_workflow_config  # noqa: E402

TIMED = ("import sys, time; t = time.process_time(); from fpq.cli import main; {call}"
         "print('SECONDS', time.process_time() - t, 'torch' in sys.modules)")


def write_done_grid(configfile: Path, folder: Path, epochs: int = 200) -> tuple[Path, list[str]]:
    """Every run of `configfile` done under `folder`/results; returns the config to read it by and
    the run IDs."""
    config = load_workflow_config(configfile)
    config["results"] = str(folder / "results")
    history = [{"epoch": e, "test_acc": 50.0, "epoch_time": 10.0, "train_loss": 1.0} for e in range(1, epochs + 1)]
    runs = expand(config).runs
    for rid in runs:
        write_json(folder / "results" / "runs" / rid / "metrics.json",
                   {"run_id": rid, "status": "ok", "epochs": epochs, "wall_time_s": 2000.0, "history": history})
    path = folder / "status.yaml"
    path.write_text(yaml.safe_dump({**config, "name": "status-bench"}))
    return path, list(runs)


def cpu_seconds(call: str) -> tuple[float, bool]:
    out = subprocess.run([sys.executable, "-c", TIMED.format(call=call)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300, check=True)
    seconds, torch = out.stdout.split("SECONDS ")[1].split()
    return float(seconds), torch == "True"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "paper.yaml")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path, run_ids = write_done_grid(args.configfile, Path(tmp))
        n = len(run_ids)
        status_call = f"main(['status', '--configfile', {str(path)!r}]); "
        import_only, status, torch = [], [], False
        for _ in range(args.rounds):
            import_only.append(cpu_seconds("")[0])
            seconds, imported = cpu_seconds(status_call)
            status.append(seconds)
            torch |= imported
    base, full = min(import_only), min(status)
    print(f"{n} runs done: `fpq status` {full:.2f} CPU s, importing fpq.cli alone {base:.2f} s "
          f"(x{full / base:.1f}); {1000 * (full - base) / n:.2f} ms per run; torch imported: {torch}")


if __name__ == "__main__":
    main()
