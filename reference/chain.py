"""The reference run's record of its device calls, for reference/run_gpu.sh (not part of the package).

The reference DAG may take two device calls in a row: the second continues the first's Snakemake
DAG on the same machine. Each call appends itself to `<results>/chain.json` (git-ignored, so it
stays on the machine between calls, beside the results) and packs a run.json that says which
call it came from, whether the DAG completed, and what exists so far.

  python3 reference/chain.py begin    CONFIG            -> prints this call's number (1, 2, ...)
  python3 reference/chain.py run-json CONFIG KEY=VALUE  -> prints the pack's run.json, records the call
  python3 reference/chain.py summary  RUN_JSON          -> one line: call, DAG complete, what is done
  python3 reference/chain.py results  CONFIG            -> prints the config's results folder
  python3 reference/chain.py blocks   CONFIG            -> prints its blocks folder ("": none), pooled into the tables
  python3 reference/chain.py pack     CONFIG TABLES FIGURES OUT RUN_JSON -> the pack, from these tables
The tables and figures of an unfinished DAG are built outside the config's folders: were they
there, the next call's Snakemake would find its targets present and run nothing.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fpq.io import write_json  # noqa: E402
from fpq.plan.blocks import blocks_folder, sitting_config  # noqa: E402
from fpq.plan.grid import expand, in_project, load_workflow_config  # noqa: E402


def workflow_config(path: str) -> dict:
    config = in_project(load_workflow_config(REPO / path if not Path(path).is_absolute() else path), REPO)
    return sitting_config(config)  # with blocks: this sitting's seeds, those no block finished


def chain_file(config: dict) -> Path:
    return Path(config["results"]) / "chain.json"


def read_chain(config: dict) -> list[dict]:
    path = chain_file(config)
    return json.loads(path.read_text())["calls"] if path.is_file() else []


def write_chain(config: dict, calls: list[dict]) -> None:
    write_json(chain_file(config), {"calls": calls})  # atomic: a call cut off mid-write leaves the old chain


def begin(config: dict) -> int:
    """Record a new call as started; its number. A call that never finished counts too."""
    calls = read_chain(config)
    calls.append({"call": len(calls) + 1, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    write_chain(config, calls)
    return len(calls)


def progress(config: dict) -> dict:
    """What exists of the plan: finished runs (metrics.json, ok or failed), Hessians, variances; which
    are missing, and which are recorded as failed (a diverged run, or a measurement of one)."""
    plan = expand(config)
    runs = Path(config["results"]) / "runs"

    def count(ids, name: str) -> dict:
        missing = sorted(rid for rid in ids if not (runs / rid / name).is_file())
        failed = sorted(rid for rid in set(ids) - set(missing)
                        if json.loads((runs / rid / name).read_text()).get("status") == "failed")
        return {"planned": len(ids), "done": len(ids) - len(missing), "missing": missing, "failed": failed}

    return {"runs": count(list(plan.runs), "metrics.json"), "hessian": count(plan.hessian_ids, "hessian.json"),
            "variance": count(plan.variance_ids, "variance.json")}


def device() -> dict:
    try:
        import torch
    except ImportError:  # the pack is still written
        return {"gpu": "unknown", "torch": "unknown"}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"gpu": gpu, "torch": torch.__version__}


def run_json(config: dict, fields: dict) -> dict:
    """The pack's run.json for this call, recorded in the chain as well."""
    calls = read_chain(config)
    if not calls:
        raise SystemExit(f"{chain_file(config)}: no call was begun")
    done = progress(config)
    exit_code, stopped = int(fields.pop("snakemake_exit")), fields.pop("stopped_by_time_box") == "1"
    record = {**calls[-1], "snakemake_exit": exit_code, "snakemake_wall_s": int(fields.pop("snakemake_wall_s")),
              "stopped_by_time_box": stopped,
              # Snakemake itself ran the whole DAG to its end: nothing stopped it, no job failed
              "dag_complete": exit_code == 0 and not stopped,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    calls[-1] = record
    write_chain(config, calls)
    info = {**device(), **fields, "call": record["call"], "dag_complete": record["dag_complete"],
            "stopped_by_time_box": stopped, "snakemake_exit": exit_code,
            "snakemake_wall_s": record["snakemake_wall_s"],
            "snakemake_wall_s_all_calls": sum(c.get("snakemake_wall_s", 0) for c in calls),
            "calls": calls, "progress": done, "date": record["finished"]}
    if "jobs_per_gpu" in info:
        info["jobs_per_gpu"] = int(info["jobs_per_gpu"])
    if "code_dirty_when_prepared" in info:
        info["code_dirty_when_prepared"] = {"true": True, "false": False}.get(info["code_dirty_when_prepared"])
    return info


def summary(info: dict) -> str:
    done = " ".join(f"{kind} {p['done']}/{p['planned']}" for kind, p in info["progress"].items())
    return f"call {info['call']}: dag_complete {str(info['dag_complete']).lower()}; {done}"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("begin", "run-json", "summary", "results", "blocks", "pack"):
        raise SystemExit(__doc__)
    if argv[0] == "summary":
        print(summary(json.loads(Path(argv[1]).read_text())))
        return 0
    config = workflow_config(argv[1])
    if argv[0] == "begin":
        print(begin(config))
    elif argv[0] == "results":
        print(config["results"])
    elif argv[0] == "blocks":
        print(blocks_folder(config))
    elif argv[0] == "pack":
        from fpq.plan.archive import pack

        tables, figures, out, info = argv[2:6]
        out = pack(config["results"], tables, figures, out,
                   {"config": config["name"], **json.loads(Path(info).read_text())})
        print(f"{out}: {out.stat().st_size / 1e6:.2f} MB")
    else:
        fields = dict(arg.split("=", 1) for arg in argv[2:])
        print(json.dumps(run_json(config, fields)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
