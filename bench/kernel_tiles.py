"""The kernels' tile sizes and warps, measured: the pick for this GPU (fpq.kernels.tuning).

    python bench/kernel_tiles.py --json OUT/tiles.json [--batch 256] [--repeats 20] [--seconds 60]

On ResNet-18's conv maps at the batch given (bf16, channels_last, as the CUDA configs train):
every fake-quant candidate (fq_tile x fq_warps) runs forward and backward over every activation
map with SFP's noise inside, and every CSD candidate (csd_block_c x csd_block_hw x csd_warps)
runs the statistics and gradient passes over every map; each candidate's row (seconds per step,
summed over the maps, timed with CUDA events after a warm-up; and whether its values equal the
default's) is appended to --json the moment it is measured. A box that closes leaves the rows
measured so far. The last line is the pick: `FPQ_KERNEL_TUNING=...` (empty where the default won).
A candidate whose values disagree is never picked. On the CPU (TRITON_INTERPRET=1, tiny maps)
it proves the plumbing and the agreement, not the speed.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fpq.kernels import tuning  # noqa: E402  (torch-free: gpu_report.py imports `pick` from here)

FAMILIES = {"fake_quant": ("fq_tile", "fq_warps"), "csd": ("csd_block_c", "csd_block_hw", "csd_warps")}
# What a sitting tries (a subset of tuning.CANDIDATES: each new value compiles once, ~1 s on a GPU)
SEARCH = {"fq_tile": (2048, 4096, 8192), "fq_warps": (4, 8), "csd_block_c": (32, 64), "csd_block_hw": (32, 64, 128),
          "csd_warps": (4, 8)}


def conv_maps(batch: int, size: int, device) -> tuple[list, list]:
    """(input shapes, output shapes) of ResNet-18's quantized convs on a batch of `size`-pixel images."""
    import torch

    from fpq.models import create_model

    model = create_model("resnet18", 10).to(device)
    ins, outs = [], []

    def keep(module, inputs, output) -> None:  # a hook that returns nothing leaves the output as it is
        ins.append(tuple(inputs[0].shape))
        outs.append(tuple(output.shape))

    hooks = [m.register_forward_hook(keep) for m in model.conv_layers()]
    with torch.no_grad():
        model(torch.zeros(batch, 3, size, size, device=device))
    for h in hooks:
        h.remove()
    return ins[1:], outs  # the first conv's input is the image (8-bit, a plain quantizer)


def tensors(shapes, device, dtype, seed: int):
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    return [torch.randn(s, generator=gen).to(device, dtype).contiguous(memory_format=torch.channels_last)
            for s in shapes]


def fake_quant_pass(maps, grads):
    """Forward and backward of every map's activation quantizer (LSQ, 4 bits, SFP after)."""
    import torch

    from fpq.kernels.ops import fake_quant

    out = []
    for x, g in zip(maps, grads):
        x = x.detach().requires_grad_()
        step = torch.tensor(0.1, device=x.device, requires_grad=True)
        offset = torch.zeros((), device=x.device)
        y = fake_quant(x, step, offset, 15, 0.01, noise="after", gate=torch.ones((), device=x.device),
                       seed=torch.tensor(3, dtype=torch.int32, device=x.device))
        y.backward(g)
        out += [y.detach(), x.grad, step.grad]
    return out


def csd_pass(students, teachers):
    from fpq.kernels.ops import csd_layer

    out = []
    for zs, zt in zip(students, teachers):
        zs = zs.detach().requires_grad_()
        loss = csd_layer(zs, zt)
        loss.backward()
        out += [loss.detach(), zs.grad]
    return out


def agree(a, b) -> bool:
    """Values equal up to the order of the sums (what another tiling may change)."""
    import torch

    return all(torch.allclose(x.float(), y.float(), rtol=1e-3, atol=1e-3) for x, y in zip(a, b))


def timed(fn, repeats: int, device) -> float:
    """Seconds of one call: CUDA events over `repeats` calls after two warm-up calls (wall time on the CPU)."""
    import torch

    for _ in range(2):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def candidates(family: str):
    keys = FAMILIES[family]
    default = tuple(tuning.DEFAULT[k] for k in keys)
    combos = list(itertools.product(*(SEARCH[k] for k in keys)))
    combos.sort(key=lambda c: c != default)  # the default first: the others are read against it
    return [dict(zip(keys, c)) for c in combos]


def measure(args) -> list[dict]:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ins, outs = conv_maps(args.batch, args.size, device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    work = {"fake_quant": (lambda: fake_quant_pass(maps, grads)), "csd": (lambda: csd_pass(students, teachers))}
    maps, grads = tensors(ins, device, dtype, 0), tensors(ins, device, dtype, 1)
    students, teachers = tensors(outs, device, dtype, 2), tensors(outs, device, dtype, 3)
    rows = []
    for family in FAMILIES:  # each family its share of the box
        reference, started = None, time.time()
        for params in candidates(family):
            if time.time() - started > args.seconds / len(FAMILIES):
                rows.append(write(args.json, {"family": family, **params, "status": f"not run (over {args.seconds} s)"}))
                continue
            os.environ[tuning.ENV] = tuning.spell({**tuning.DEFAULT, **params})
            try:
                values = work[family]()
                reference = values if reference is None else reference
                seconds = timed(work[family], args.repeats, device)
                row = {"family": family, **params, "status": "ok", "s_per_step": seconds,
                       "agrees": agree(reference, values), "device": torch.cuda.get_device_name(0)
                       if device.type == "cuda" else "cpu", "batch": args.batch, "maps": len(ins)}
            except Exception as err:  # a launch the GPU refuses (too many resources) is a row, not a crash
                row = {"family": family, **params, "status": f"failed: {type(err).__name__}: {str(err)[:200]}"}
            rows.append(write(args.json, row))
            print(json.dumps(row), flush=True)
    os.environ.pop(tuning.ENV, None)
    return rows


def write(path: Path | None, row: dict) -> dict:
    if path is not None:
        path.write_text(json.dumps(read_rows(path) + [row], indent=1) + "\n")
    return row


def read_rows(path: Path) -> list[dict]:
    """The rows of a tiles.json ([] where there is none: the harness did not reach it)."""
    return json.loads(path.read_text()) if path.is_file() else []


def fastest(rows: list[dict], family: str) -> dict | None:
    """The family's fastest measured candidate whose values agree with the default's, or None."""
    good = [r for r in rows if r["family"] == family and r["status"] == "ok" and r["agrees"]]
    return min(good, key=lambda r: r["s_per_step"], default=None)


def pick(rows: list[dict]) -> dict[str, int]:
    """The fastest agreeing candidate of each family (the default where none was measured)."""
    chosen = dict(tuning.DEFAULT)
    for family, keys in FAMILIES.items():
        best = fastest(rows, family)
        if best is not None:
            chosen.update({k: best[k] for k in keys})
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32, help="image side (the CPU smoke run takes 8)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measure no new candidate after this (each family half of it)")
    args = parser.parse_args(argv)
    chosen = pick(measure(args))
    print(f"{tuning.ENV}={tuning.spell(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
