"""The Triton kernels compiled ahead of time for every GPU generation, without a GPU.

    python bench/kernel_aot.py [--archs sm_80,sm_86,sm_89,sm_90] [--out DIR] [--quick]

1. **Record** every specialisation a training launches: one training step (forward and backward,
   W2A4, kernels=triton) per model and method case, fp32 NCHW and bf16 channels_last, with each
   kernel's launch intercepted, not run. Each launch is specialised as Triton's JIT would
   specialise it (`native_specialize_impl`, the JIT's own: a pointer's 16-byte alignment, an int
   divisible by 16, an int equal to 1 made a constant) and kept once.
2. **Compile** each for each target (`triton.compile` with `GPUTarget("cuda", cc, 32)`, then the
   `ptxas` that ships with Triton, `-v`): registers per thread, spill bytes, the widest global
   load, the occupancy that leaves, from the architecture's limits.
3. **Check**: a compile error, a register spill, or a kernel whose data is aligned (`aligned`:
   every pointer 16-byte aligned, every int of its addresses divisible by 16 or a constant) that
   still loads one element at a time fails (tests/kernels/test_aot.py runs it). The table shows
   the widest load: 128 bits is the most one thread can load at once.
4. **Roofline**: the bytes the kernels move in one ResNet-18 W2A4 step at batch 256 (from the
   recorded launches at a small batch, the batch-sized ones scaled), and that time at H100 and H200
   bandwidth, beside the torch path the harness measured (bench/results/h200-2026-12-04).

Writes `aot.json` (every row) and `aot.md` (the table and the roofline) under --out. Needs
Triton, not a GPU and not its interpreter (TRITON_INTERPRET is ignored: a launch never runs).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")
# Per SM: resident warps, resident blocks, 32-bit registers, shared memory in bytes (CUDA guide,
# compute capabilities table). Registers are allocated per warp in units of 256.
LIMITS = {"sm_80": (64, 32, 65536, 164 * 1024), "sm_86": (48, 16, 65536, 100 * 1024),
          "sm_89": (48, 24, 65536, 100 * 1024), "sm_90": (64, 32, 65536, 228 * 1024)}
BANDWIDTH = {"H100 SXM": 3.35e12, "H200": 4.8e12}  # bytes/s, the data sheets' HBM peak
MEASURED = REPO / "bench" / "results" / "h200-2026-12-04" / "summary.json"
MODELS = ("resnet20", "resnet18", "resnet50", "mobilenetv1", "mobilenetv2")
# (label, method, quant keys): every kernel variant a shipped method reaches
CASES = (("lsq", "lsq", {}), ("lsq+", "lsq+", {}), ("fpq", "fpq", {}),
         ("fpq, SFP before", "fpq", {"sfp_placement": "before"}), ("fpq, batch stats", "fpq", {"csd_stats": "batch"}))
PRECISIONS = {"fp32 NCHW": (False, False), "bf16 NHWC": (True, True)}  # (bf16 autocast, channels_last)
KERNELS = ("fake_quant_fwd_kernel", "fake_quant_bwd_kernel", "csd_moments_kernel", "csd_grad_kernel")
ROOFLINE_BATCH = 256


# ----------------------------------------------------------------------------- 1. record
class Recorder:
    """Stands in for a kernel in its module: `kernel[grid](*args)` records the launch's
    specialisation (and its tensors' sizes) instead of running it."""

    def __init__(self, kernel, seen: dict, launches: list, case: str):
        self.kernel, self.seen, self.launches, self.case = kernel, seen, launches, case

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.launch(grid, args, kwargs)

    def launch(self, grid, args, kwargs) -> None:
        import torch
        from triton._C.libtriton import native_specialize_impl
        from triton.backends.compiler import BaseBackend

        fn = self.kernel
        values = dict(zip(fn.arg_names, args)) | kwargs
        signature, constexprs, attrs = {}, {}, {}
        for param in fn.params:
            value = values[param.name]
            if param.is_constexpr:
                signature[param.name], constexprs[param.name] = "constexpr", _plain(value)
                continue
            kind, attr = native_specialize_impl(BaseBackend, value, False, not param.do_not_specialize,
                                                not param.do_not_specialize_on_alignment)
            signature[param.name] = kind
            if kind == "constexpr":
                constexprs[param.name] = _plain(attr)
            elif attr:
                attrs[param.name] = attr
        key = json.dumps([fn.__name__, signature, constexprs, attrs], sort_keys=True)
        spec = self.seen.setdefault(key, {"kernel": fn.__name__, "signature": signature, "constexprs": constexprs,
                                          "attrs": attrs, "num_warps": kwargs.get("num_warps", 4), "cases": []})
        if self.case not in spec["cases"]:
            spec["cases"].append(self.case)
        tensors = [v for v in args if isinstance(v, torch.Tensor)]
        first = tensors[0]
        self.launches.append({"case": self.case, "kernel": fn.__name__, "numel": first.numel(),
                              "bytes_per": first.element_size(), "batch_dim": first.shape[0] if first.dim() else 0,
                              "dims": first.dim()})


def kernel_module(name: str):
    """The module that holds kernel `name` (fpq.kernels.fake_quant or fpq.kernels.csd)."""
    from fpq.kernels import csd, fake_quant

    return fake_quant if name.startswith("fake_quant") else csd


def _plain(value):
    return value.value if hasattr(value, "value") else value


def record(models=MODELS, cases=CASES, precisions=tuple(PRECISIONS), batch: int = 16) -> tuple[list[dict], list[dict]]:
    """(the specialisations, every launch) of one training step per model x case x precision."""
    import torch

    seen, launches = {}, []
    originals = {name: getattr(kernel_module(name), name) for name in KERNELS}
    try:
        for model in models:
            for label, method, quant in cases:
                for precision in precisions:
                    case = f"{model} {label} {precision}"
                    for name, kernel in originals.items():
                        setattr(kernel_module(name), name, Recorder(kernel, seen, launches, case))
                    _one_step(model, method, quant, *PRECISIONS[precision], batch)
    finally:
        for name, kernel in originals.items():
            setattr(kernel_module(name), name, kernel)
    torch.set_grad_enabled(True)
    return list(seen.values()), launches


def _one_step(arch: str, method: str, quant: dict, bf16: bool, channels_last: bool, batch: int) -> None:
    """Forward and backward of `method`'s loss on random CIFAR-sized images, through the kernels,
    as a CUDA-graph step draws them (SFP's gate on the device: every SFP layer launches its noise)."""
    import torch

    from fpq.config import QuantConfig, RunConfig, RuntimeConfig
    from fpq.models import create_model
    from fpq.quant import set_kernels
    from fpq.run.step import set_capturable
    from fpq.run.train import make_objective, prepare_student

    torch.manual_seed(0)
    cfg = RunConfig(arch, method, teacher="aot", quant=QuantConfig(w_bits=2, a_bits=4, calib_images=batch, **quant),
                    runtime=RuntimeConfig(device="cpu", bf16=bf16, teacher_bf16=bf16, channels_last=channels_last))
    teacher = create_model(arch, 10).eval()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    student = prepare_student(cfg, teacher, x, torch.device("cpu")).train()
    if channels_last:
        teacher, x = teacher.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    set_kernels(student, "triton")
    set_capturable(student, True)
    objective = make_objective(cfg, student, teacher, kernels="triton")
    loss, _ = objective(x, y)
    loss.backward()


# ----------------------------------------------------------------------------- 2. compile
def ptxas_path() -> str:
    from triton.backends.nvidia.compiler import get_ptxas

    return get_ptxas(90).path


def compile_spec(spec: dict, arch: str) -> dict:
    """One specialisation compiled for one target: registers, spills, loads, occupancy (or the error)."""
    import triton
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(kernel_module(spec["kernel"]), spec["kernel"])
    attrs = {(fn.arg_names.index(name),): BaseBackend.parse_attr(attr) for name, attr in spec["attrs"].items()}
    row = {"kernel": spec["kernel"], "arch": arch, "spec": describe(spec), "num_warps": spec["num_warps"],
           "aligned": aligned(spec), "element_bits": element_bits(spec)}
    started = time.time()
    try:
        compiled = triton.compile(ASTSource(fn, spec["signature"], spec["constexprs"], attrs),
                                  target=GPUTarget("cuda", int(arch[3:]), 32), options={"num_warps": spec["num_warps"]})
        ptx = compiled.asm["ptx"]
        usage = ptxas_usage(ptx, arch)
    except Exception as err:  # the row says what failed; check() fails on it
        return {**row, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
    shared = int(compiled.metadata.shared)
    return {**row, **usage, **load_widths(ptx), "shared": shared, "compile_s": round(time.time() - started, 2),
            "occupancy": occupancy(arch, usage["registers"], spec["num_warps"], shared)}


def ptxas_usage(ptx: str, arch: str) -> dict:
    """ptxas -v of the PTX for the target: registers per thread and spill bytes (stores + loads)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "k.ptx"
        source.write_text(ptx)
        gpu = f"{arch}a" if arch == "sm_90" else arch  # Triton's name for Hopper's full feature set
        out = subprocess.run([ptxas_path(), "-v", "--regAllocOptLevel=2", f"--gpu-name={gpu}", str(source), "-o",
                              str(Path(tmp) / "k.cubin")], capture_output=True, text=True)  # the flags Triton gives it
    if out.returncode:
        raise RuntimeError(f"ptxas failed ({out.returncode}): {(out.stderr or out.stdout).strip()[:300]}")
    log = out.stderr + out.stdout
    registers = max(int(m) for m in re.findall(r"Used (\d+) registers", log))
    spills = sum(int(a) + int(b) for a, b in re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log))
    return {"registers": registers, "spill_bytes": spills}


def load_widths(ptx: str) -> dict:
    """The global loads of the PTX by width in bits ({bits: count}) and the widest."""
    widths: dict[int, int] = {}
    for vec, bits in re.findall(r"ld\.global(?:\.\w+)*?(?:\.v(\d))?\.[bfsu](\d+)\b", ptx):
        width = int(vec or 1) * int(bits)
        widths[width] = widths.get(width, 0) + 1
    return {"load_bits": dict(sorted(widths.items())), "widest_load": max(widths, default=0)}


def occupancy(arch: str, registers: int, num_warps: int, shared: int) -> float:
    """Resident warps / the SM's maximum, as registers, warps, blocks and shared memory allow."""
    max_warps, max_blocks, regs, smem = LIMITS[arch]
    per_warp = math.ceil(registers * 32 / 256) * 256
    blocks = min(max_blocks, max_warps // num_warps, regs // (per_warp * num_warps) if per_warp else max_blocks,
                 smem // shared if shared else max_blocks)
    return round(blocks * num_warps / max_warps, 3)


def aligned(spec: dict) -> bool:
    """Nothing in the signature stops a vector load of the big tensors: every pointer 16-byte
    aligned, and every int that enters their addresses or bounds their contiguous dimension
    divisible by 16 (the fake quantizer's row length; CSD's strides, and HW or C, whichever runs
    along the stride that is 1). Scalars such as qmax, or a per-row count, do not matter."""
    sig, attrs = spec["signature"], spec["attrs"]
    need = [name for name, kind in sig.items() if kind.startswith("*")]
    if spec["kernel"].startswith("fake_quant"):
        need.append("per_channel")
    else:
        unit = [name for name in ("s_shw", "s_sc") if sig.get(name) == "constexpr" and spec["constexprs"][name] == 1]
        if not unit:
            return False
        need += ["HW" if unit[0] == "s_shw" else "C"]
        need += [name for name in ("s_sn", "s_sc", "s_shw", "t_sn", "t_sc", "t_shw") if sig.get(name) in ("i32", "i64")]
    return all(sig.get(name) == "constexpr" or attrs.get(name) == "D" for name in need)


def element_bits(spec: dict) -> int:
    """Bits of one element of the kernel's big tensor (its first pointer: x, grad or zs)."""
    first = next(kind for kind in spec["signature"].values() if kind.startswith("*"))
    return int(re.sub(r"\D", "", first) or 32)


def describe(spec: dict) -> str:
    """'fp32, SHIFT=0 NOISE=1 ROWS=1 BLOCK_SIZE=4096, channels=1' (dtype, constants)."""
    ptrs = sorted({k[1:] for k in spec["signature"].values() if k.startswith("*") and k[1:] in ("fp32", "bf16", "fp16")})
    consts = " ".join(f"{k}={v}" for k, v in spec["constexprs"].items())
    unaligned = [k for k, v in spec["signature"].items() if (v.startswith("*") or v in ("i32", "i64"))
                 and spec["attrs"].get(k) != "D" and k not in ("qmax", "blocks", "channels", "plane", "coef_sn",
                                                              "coef_plane")]
    return f"{'/'.join(ptrs)}, {consts}" + (f"; not /16: {', '.join(unaligned)}" if unaligned else "")


# ----------------------------------------------------------------------------- 3. check
def problems(rows: list[dict]) -> list[str]:
    """Each row's failure: a compile error, a spill, or narrow loads where everything is aligned."""
    out = []
    for r in rows:
        where = f"{r['kernel']} [{r['spec']}] on {r['arch']}"
        if "error" in r:
            out.append(f"{where}: {r['error']}")
        elif r["spill_bytes"]:
            out.append(f"{where}: spills {r['spill_bytes']} bytes at {r['registers']} registers")
        elif r["aligned"] and r["widest_load"] <= r["element_bits"]:
            out.append(f"{where}: aligned, yet it loads one element at a time ({r['widest_load']} bits)")
    return out


# ----------------------------------------------------------------------------- 4. roofline
def kernel_bytes(launch: dict) -> int:
    """Bytes a launch moves through memory: the fake quantizer reads x and writes its output
    (forward), reads the gradient and x and writes grad_x (backward); CSD reads both maps
    (statistics), and both maps and writes the gradient (backward). Per-row scalars aside."""
    passes = {"fake_quant_fwd_kernel": 2, "fake_quant_bwd_kernel": 3, "csd_moments_kernel": 2, "csd_grad_kernel": 3}
    return passes[launch["kernel"]] * launch["numel"] * launch["bytes_per"]


def roofline(launches: list[dict], batch: int) -> dict:
    """Per case ('resnet18 fpq bf16 NHWC'): bytes of one step at ROOFLINE_BATCH (a launch whose
    tensor is batch-sized scales, a weight's does not) and those seconds at each bandwidth."""
    out = {}
    for launch in launches:
        scale = ROOFLINE_BATCH / batch if launch["dims"] == 4 and launch["batch_dim"] == batch else 1.0
        entry = out.setdefault(launch["case"], {"bytes": 0.0, "launches": 0})
        entry["bytes"] += kernel_bytes(launch) * scale
        entry["launches"] += 1
    for entry in out.values():
        entry["seconds"] = {gpu: entry["bytes"] / bw for gpu, bw in BANDWIDTH.items()}
    return out


def measured_torch_path() -> dict:
    """s/epoch of ResNet-18 W2A4 by method on the path the 2026-12-04 harness chose (the CUDA graph,
    the torch path: its summary.json)."""
    if not MEASURED.is_file():
        return {}
    r18 = json.loads(MEASURED.read_text()).get("resnet18", {})
    return {m: r18[m] for m in ("fp", "lsq", "lsq+csd", "fpq") if isinstance(r18.get(m), (int, float))}


# ----------------------------------------------------------------------------- report
def markdown(rows: list[dict], lines: dict, specs: list[dict], archs, seconds: float) -> str:
    import triton

    head = (f"# Triton kernels compiled ahead of time\n\n`python bench/kernel_aot.py` (Triton {triton.__version__}, "
            f"ptxas of Triton, no GPU), {len(specs)} specialisations recorded from one training step per model "
            f"and case, compiled for {', '.join(archs)} in {seconds:.0f} s. Occupancy: resident warps over the SM's "
            f"maximum, from registers, warps, blocks and shared memory.\n\n")
    table = ["| kernel | arch | specialisation | warps | registers | spill B | widest load (bits) | occupancy |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['kernel']} | {r['arch']} | {r['spec']} | {r['num_warps']} | error: {r['error']} | | | |")
        else:
            table.append(f"| {r['kernel']} | {r['arch']} | {r['spec']} | {r['num_warps']} | {r['registers']} | "
                         f"{r['spill_bytes']} | {r['widest_load']} | {r['occupancy']:.2f} |")
    roof = ["", f"## Roofline: one ResNet-18 W2A4 step at batch {ROOFLINE_BATCH}", "",
            "Bytes the kernels move (each tensor once per pass) and that time at the data sheets' peak bandwidth: "
            "a floor no kernel beats. One epoch of CIFAR-10 is 195 steps.", "",
            "| case | launches | MB moved | " + " | ".join(f"ms at {g}" for g in BANDWIDTH) + " | "
            + " | ".join(f"s/epoch at {g}" for g in BANDWIDTH) + " |",
            "|---|---:|---:|" + "---:|" * (2 * len(BANDWIDTH))]
    for case, entry in sorted(lines.items()):
        if not case.startswith("resnet18"):
            continue
        ms = " | ".join(f"{1e3 * s:.2f}" for s in entry["seconds"].values())
        epoch = " | ".join(f"{195 * s:.2f}" for s in entry["seconds"].values())
        roof.append(f"| {case[len('resnet18 '):]} | {entry['launches']} | {entry['bytes'] / 1e6:,.0f} | {ms} | {epoch} |")
    measured = measured_torch_path()
    if measured:
        roof += ["", "Measured on the torch path (H200, CUDA graph, bf16 NHWC, bench/results/h200-2026-12-04), "
                 "s/epoch: " + ", ".join(f"{m} {s:.2f}" for m, s in measured.items())
                 + ". What a method adds to FP (LSQ: the quantizers; FPQ: theirs, SFP's, CSD's and the teacher's "
                 "forward) is what the kernels can take back; the floor above is what they cannot."]
    return head + "\n".join(table + roof) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--out", type=Path, default=None, help="write aot.json and aot.md here")
    parser.add_argument("--quick", action="store_true", help="ResNet-20 and MobileNetV1 only (the test's set: small maps, depthwise rows)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    started = time.time()
    models = ("resnet20", "mobilenetv1") if args.quick else MODELS  # V1: 2 x 2 maps, depthwise rows
    specs, launches = record(models, batch=args.batch)
    print(f"recorded {len(specs)} specialisations from {len(launches)} launches in {time.time() - started:.0f} s",
          flush=True)
    archs = args.archs.split(",")
    rows = [compile_spec(spec, arch) for spec in specs for arch in archs]
    bad = problems(rows)
    seconds = time.time() - started
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "aot.json").write_text(json.dumps({"specs": specs, "rows": rows, "problems": bad}, indent=1) + "\n")
        (args.out / "aot.md").write_text(markdown(rows, roofline(launches, args.batch), specs, archs, seconds))
    print(f"compiled {len(rows)} ({len(specs)} x {len(archs)} targets) in {seconds:.0f} s; {len(bad)} problems")
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ["TRITON_INTERPRET"] = "0"  # before Triton's import: a kernel must be its JIT function, to compile it
    sys.exit(main())
