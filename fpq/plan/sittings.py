"""A study priced block by block: how many sittings of a given length its seeds still need.

A sitting (one block, fpq.plan.blocks) first trains its own teacher, then whole seeds: every QAT
run of a seed and its final Hessians. So its cost is the teacher's seconds plus whole seeds; a seed
that does not fit is not started (the time box would drop it). Seconds are GPU seconds from
config/epoch_seconds.yaml, as `fpq budget` counts them (no job starts, no variance probes).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

from fpq.plan.blocks import blocks_folder, finished_seeds, read_blocks
from fpq.plan.budget import final_hessian, load_timings, run_gpu_seconds
from fpq.plan.grid import Plan, expand, schedule_point

SITTING_S = 660  # seconds of compute a sitting holds by default (--sitting-s): two device calls less starts and packs


def seed_seconds(plan: Plan, config: dict, timings: dict) -> tuple[float, dict[int, float]]:
    """(the teachers' seconds, {seed: seconds of its QAT runs and their final Hessians})."""
    final = final_hessian(config)
    teacher, by_seed = 0.0, {}
    for rid, run in plan.runs.items():
        seconds = sum(run_gpu_seconds(plan, rid, timings, final))
        if run.teacher_id is None:
            teacher += seconds
        else:
            by_seed[run.cell.seed] = by_seed.get(run.cell.seed, 0.0) + seconds
    return teacher, by_seed


def sittings_report(config: dict, timings_path: str | Path, sitting_s: float = SITTING_S) -> str:
    """The study's blocks so far, and the sittings of `sitting_s` seconds its other seeds need."""
    return price(config, timings_path, sitting_s)[0]


def price(config: dict, timings_path: str | Path, sitting_s: float = SITTING_S) -> tuple[str, int | None]:
    """(sittings_report's text, the sittings needed: 0 when none is left, None when no seed fits one)."""
    blocks = read_blocks(blocks_folder(config))
    done = finished_seeds(config, blocks) if blocks else {}
    left = [s for s in config["seeds"] if s not in done]
    study = {**config, "seeds": left or config["seeds"][:1]}  # a seed's cost, even when none is left
    teacher, by_seed = seed_seconds(expand(study), config, load_timings(timings_path))
    lines = [f"in sittings of {sitting_s:.0f} s (--sitting-s): {len(blocks)} block{'s' if len(blocks) != 1 else ''} "
             f"committed" + (f", seed{'s' if len(done) > 1 else ''} {', '.join(map(str, sorted(done)))} finished"
                                  if done else "")]
    if not left:
        return "\n".join(lines + ["  every seed is finished by a block: no sitting left"]), 0
    dearest = max(by_seed.values())
    fits = math.floor((sitting_s - teacher) / dearest) if dearest else len(left)
    lines.append(f"  a block: its teacher {teacher:.0f} s, then whole seeds of {dearest:.0f} s each "
                 f"(every method, final Hessians)")
    if fits < 1:
        return "\n".join(lines + [f"  no whole seed fits one sitting after its teacher: {len(left)} seeds left "
                                  "cannot be made of sittings this long"]), None
    per, need = min(fits, len(left)), math.ceil(len(left) / fits)
    lines.append(f"  {per} seed{'s' if per != 1 else ''} a sitting: the seeds left ({', '.join(map(str, left))}) "
                 f"need {need} sitting{'s' if need != 1 else ''}")
    return "\n".join(lines), need


def point_config(config: dict, epochs: int) -> dict:
    """A schedule study's point at `epochs` QAT epochs (`qat_schedule`): named and blocked after it."""
    point = copy.deepcopy(config)
    point["qat"] = {**config["qat"], "epochs": epochs}
    point["name"] = config["name"].removesuffix(f"-q{config['qat']['epochs']}")
    schedule_point(point)  # the grid's own naming: <name>-q<epochs>
    return point


def study_report(config: dict, timings_path: str | Path, sitting_s: float = SITTING_S) -> str:
    """sittings_report of the config, or of every point of a schedule study."""
    points = config.get("qat_schedule") or []
    if not points:
        return sittings_report(config, timings_path, sitting_s)
    lines, needs = [], []
    for epochs in points:
        point = point_config(config, epochs)
        text, need = price(point, timings_path, sitting_s)
        lines.append(f"{point['name']} ({epochs} QAT epochs) {text}")
        needs.append(need)
    total = "cannot be made of sittings this long" if None in needs else f"{sum(needs)} sittings"
    return "\n".join(lines + [f"the schedule study ({len(points)} points): {total}"])
