"""Training-step speed: fpq's own training path next to a plain PyTorch loop, in one run.

For each model (resnet20, resnet18, mobilenetv2) and method (FP, LSQ W2A4, FPQ W2A4; other QAT
methods with --methods, fpq path only) it times training steps of
  plain - a loop written here as a researcher would: unfused fake quant (an op chain per
          quantizer), fp32 eager, SFP gate drawn per layer, CSD by forward hooks, a host sync
          (`loss.item()`) per step;
  fpq   - fpq's path: the student of fpq.run.train.prepare_student, the loss of
          fpq.run.train.make_objective and the SGD step of fpq.run.train, with the runtime speed keys
          given (fused quantizers by default; `--fast` adds bf16 autocast, a bf16 teacher,
          channels_last, torch.compile of the whole loss (student, teacher, CSD) and fused SGD).
Both see the same batch on the device. All paths of a method alternate round by round; the median round counts.
Prints images/s, seconds per 50k-image epoch, peak memory (CUDA) and the ratio fpq/plain.

    python bench/bench_step.py                      # CPU: batch 64, a few steps
    python bench/bench_step.py --batch 256 --steps 30 --fast   # GPU
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from fpq.config import load_config
from fpq.io import write_text
from fpq.method.registry import METHODS
from fpq.models import create_model
from fpq.run.build import resolve_device
from fpq.run.train import make_objective, make_optimizer, prepare_models, prepare_student, train_step

EPOCH_IMAGES = 50_000
PLAIN_METHODS = ("fp", "lsq", "fpq")
# The fast path: the runtime keys config/*.yaml turn on for CUDA (`runtime.cuda`).
FAST = {"bf16": True, "teacher_bf16": True, "channels_last": True, "compile": True, "fused_optimizer": True}


# ----------------------------------------------------------------------------- plain reference
class PlainFakeQuant(nn.Module):
    """LSQ written as the usual unfused chain (per-tensor or per-channel step, fixed offset)."""

    def __init__(self, bits: int, channels: int | None):
        super().__init__()
        shape = (channels, 1, 1, 1) if channels else ()
        self.qmax = 2 ** bits - 1
        self.step = nn.Parameter(torch.ones(shape))
        self.register_buffer("offset", torch.zeros(shape))

    def init(self, x: torch.Tensor) -> None:
        dims = list(range(1, x.dim())) if self.step.dim() else list(range(x.dim()))
        lo, hi = x.amin(dims).reshape(self.step.shape), x.amax(dims).reshape(self.step.shape)
        with torch.no_grad():
            self.step.copy_(((hi - lo) / self.qmax).clamp_min(1e-8))
            self.offset.copy_(torch.round(self.qmax - hi / self.step))

    def forward(self, x):
        g = 1.0 / (x[0].numel() * self.qmax) ** 0.5
        s = self.step * g + (self.step - self.step * g).detach()
        v = x / s
        q = torch.clamp(v + (torch.round(v) - v).detach() + self.offset, 0, self.qmax)
        return (q - self.offset) * s


class PlainQuantConv(nn.Module):
    def __init__(self, conv: nn.Conv2d, w_bits: int, a_bits: int, sfp_p: float):
        super().__init__()
        self.conv, self.sfp_p = conv, sfp_p
        self.wq, self.aq = PlainFakeQuant(w_bits, conv.out_channels), PlainFakeQuant(a_bits, None)

    def forward(self, x):
        x = self.aq(x)
        if self.training and self.sfp_p and random.random() < self.sfp_p:
            x = x + (torch.rand_like(x) - 0.5) * self.aq.step.detach()
        return F.conv2d(x, self.wq(self.conv.weight), None, self.conv.stride, self.conv.padding,
                        self.conv.dilation, self.conv.groups)


def plain_quantize(model: nn.Module, w_bits: int, a_bits: int, sfp_p: float, images: torch.Tensor) -> None:
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for i, (name, conv) in enumerate(convs):
        bits = (8, 8) if i == 0 else (w_bits, a_bits)
        parent, _, attr = name.rpartition(".")
        # the new step sizes and offsets follow the conv onto its device (created on the CPU, they
        # crashed the first CUDA forward: "Expected all tensors to be on the same device")
        setattr(model.get_submodule(parent), attr, PlainQuantConv(conv, *bits, sfp_p).to(conv.weight.device))
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: inputs.__setitem__(m, a[0]))
             for m in model.modules() if isinstance(m, PlainQuantConv)]
    with torch.no_grad():
        model.eval()(images)
    for h in hooks:
        h.remove()
    for m, x in inputs.items():
        m.aq.init(x)
        m.wq.init(m.conv.weight)
    model.train()


def plain_csd(s_feats, t_feats):
    loss = 0.0
    for zs, zt in zip(s_feats, t_feats):
        zs = (zs - zs.mean((2, 3), keepdim=True)) / torch.sqrt(zs.var((2, 3), unbiased=False, keepdim=True) + 1e-5)
        zt = (zt - zt.mean((2, 3), keepdim=True)) / torch.sqrt(zt.var((2, 3), unbiased=False, keepdim=True) + 1e-5)
        loss = loss + F.mse_loss(zs, zt)
    return loss


def plain_model(arch: str, method: str, num_classes: int, device, x) -> tuple[nn.Module, nn.Module]:
    """The plain loop's student (LSQ W2A4 as an op chain where the method quantizes) and teacher."""
    model = create_model(arch, num_classes).to(device)
    teacher = copy.deepcopy(model).eval()
    spec = METHODS[method]
    if spec.quantizer:
        plain_quantize(model, 2, 4, 0.1 if spec.sfp else 0.0, x[:100])
    return model, teacher


def plain_step_fn(arch: str, method: str, num_classes: int, device, x, y):
    model, teacher = plain_model(arch, method, num_classes, device, x)
    spec = METHODS[method]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    s_feats, t_feats = [], []
    if spec.csd:
        for m in model.modules():
            if isinstance(m, PlainQuantConv):
                m.register_forward_hook(lambda _m, _i, o: s_feats.append(o))
        for m in teacher.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_hook(lambda _m, _i, o: t_feats.append(o))

    def step():
        s_feats.clear()
        t_feats.clear()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if spec.csd:
            with torch.no_grad():
                teacher(x)
            loss = loss + plain_csd(s_feats, t_feats)
        loss.backward()
        opt.step()
        return loss.item()  # the per-step host sync of a typical loop

    return step


# ----------------------------------------------------------------------------- fpq's path
def fpq_step_fn(arch: str, method: str, num_classes: int, device, x, y, runtime: dict):
    spec = METHODS[method]
    cfg = load_config({"arch": arch, "method": method, "teacher": "bench" if spec.quantizer else "",
                       "data": {"dataset": "cifar10" if num_classes == 10 else "cifar100"},
                       "quant": {"w_bits": 2 if spec.quantizer else 32, "a_bits": 4 if spec.quantizer else 32},
                       "runtime": {"device": str(device), **runtime}})
    teacher = create_model(arch, num_classes).to(device).eval()
    if spec.quantizer:  # as fpq.run.train builds them: the student, then the teacher frozen for speed
        model, teacher = prepare_models(cfg, teacher, x[:100], device)
    else:
        model = prepare_student(cfg, None, None, device)
    if cfg.runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    objective = make_objective(cfg, model, teacher)
    opt, _ = make_optimizer(cfg, model)
    params = [p for p in model.parameters() if p.requires_grad]
    sam_rho = cfg.quant.sam_rho if spec.sam else None
    model.train()
    return lambda: train_step(objective, opt, params, x, y, sam_rho)


def parse_also(text: str) -> tuple[str, dict]:
    """'fused_quant=false,compile=true' -> ('fused_quant=false,compile=true', {...}) with typed values."""
    overrides = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SystemExit(f"--also expects KEY=VAL[,KEY=VAL], got {text!r}")
        overrides[key.strip()] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return text, overrides


# ----------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, device, steps: int) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def build(make, device, warmup: int, label: str = "") -> dict:
    """Build a step function and warm it up (this pays any compile: `build_s`, printed at once, so a
    run cut off by its time limit still shows what compiling cost); peak memory on CUDA."""
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    step = make()
    for _ in range(warmup):
        step()
    sync(device)
    build_s = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20 if device.type == "cuda" else None
    print(f"  built {label}: {build_s:.1f}s with {warmup} warm-up steps", flush=True)
    return {"step": step, "peak_mb": peak, "times": [], "build_s": build_s}


def measure_interleaved(entries: dict, device, steps: int, rounds: int) -> None:
    """Round-robin over every step function of one model, so drift hits all paths alike."""
    for _ in range(rounds):
        for entry in entries.values():
            entry["times"].append(time_steps(entry["step"], device, steps))
    for entry in entries.values():
        entry["step_s"] = statistics.median(entry["times"])


def _row(arch, method, path, r, entries, batch, variants, runtime) -> dict:
    base = entries.get((method, "plain")) if path == "fpq" else entries.get((method, "fpq"))
    ratio = r["step_s"] / base["step_s"] if base and path != "plain" else None
    ips = batch / r["step_s"]
    return {"model": arch, "method": method, "path": path, "batch": batch, "images_per_s": ips,
            "s_per_epoch": EPOCH_IMAGES / ips, "peak_mb": r["peak_mb"], "build_s": r["build_s"],
            "runtime": variants.get(path, runtime) if path != "plain" else None,
            "ratio_fpq_over_plain": ratio if path == "fpq" else None,
            "ratio_over_fpq": ratio if path not in ("fpq", "plain") else None}


def _line(row: dict, width: int) -> str:
    ratio = row["ratio_fpq_over_plain"] or row["ratio_over_fpq"]
    peak = f"{row['peak_mb']:8.0f}" if row["peak_mb"] else "     n/a"
    shown = f"{ratio:9.2f}" if ratio else ""
    return (f"{row['model']:12s} {row['method']:7s} {row['path']:{width}s} {row['images_per_s']:9.1f} "
            f"{row['s_per_epoch']:8.1f} {peak} {shown:>9s}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet20,resnet18,mobilenetv2")
    p.add_argument("--methods", default="fp,lsq,fpq", help="any of fp,lsq,lsq+,pact,kd,lsq+sam,lsq+sfp,"
                   "lsq+csd,fpq; the plain loop exists for fp, lsq and fpq")
    p.add_argument("--batch", type=int, default=None, help="default 256 on CUDA, 64 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps per round (default 20 CUDA, 2 CPU)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=None, help="default 10 on CUDA, 1 on CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--fast", action="store_true", help="bf16 + teacher bf16 + channels_last + compile + fused SGD "
                   "(the configs' CUDA keys; on CPU the compile takes minutes)")
    p.add_argument("--runtime", metavar="KEY=VAL[,KEY=VAL]", help="runtime keys of fpq's main path (after --fast)")
    p.add_argument("--also", action="append", default=[], metavar="KEY=VAL[,KEY=VAL]",
                   help="time one more fpq path with these runtime keys changed, e.g. fused_quant=false "
                        "or compile=false (repeatable); its ratio is to fpq's main path")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (256 if cuda else 64)
    steps, warmup = args.steps or (20 if cuda else 2), args.warmup if args.warmup is not None else (10 if cuda else 1)
    runtime = {"fused_quant": True}
    if args.fast:
        runtime.update(FAST)
    if args.runtime:
        runtime.update(parse_also(args.runtime)[1])
    variants = {label: {**runtime, **overrides} for label, overrides in map(parse_also, args.also)}
    if cuda:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name} | torch {torch.__version__} | batch {batch} | fpq runtime {runtime} | "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    rows = []
    width = max([5] + [len(v) for v in variants])
    header = (f"{'model':12s} {'method':7s} {'path':{width}s} {'img/s':>9s} {'s/epoch':>8s} {'peak MB':>8s} "
              f"{'ratio':>9s}   (fpq: / plain; others: / fpq)")
    print(header + "\n" + "-" * len(header), flush=True)
    for arch in args.models.split(","):
        torch.manual_seed(0)
        random.seed(0)
        # One method at a time: its paths alternate round by round, and its rows are written before
        # the next method compiles (the whole-step compile of four ResNet-18 paths outlasted a
        # 230-second step on the H200 on 2026-11-27 and left nothing behind).
        for method in args.methods.split(","):
            entries = {}
            if method in PLAIN_METHODS:
                entries[(method, "plain")] = build(lambda: plain_step_fn(arch, method, 10, device, x, y), device,
                                                   warmup, f"{arch} {method} plain")
            entries[(method, "fpq")] = build(lambda: fpq_step_fn(arch, method, 10, device, x, y, runtime), device,
                                             warmup, f"{arch} {method} fpq")
            for label, keys in variants.items():
                entries[(method, label)] = build(lambda: fpq_step_fn(arch, method, 10, device, x, y, keys), device,
                                                 warmup, f"{arch} {method} {label}")
            measure_interleaved(entries, device, steps, args.rounds)
            for (method, path), r in entries.items():
                rows.append(_row(arch, method, path, r, entries, batch, variants, runtime))
                print(_line(rows[-1], width), flush=True)
            del entries
            if args.json:  # after every method, so a run cut off by a time limit keeps what it measured
                write_text(args.json, json.dumps({"device": name, "torch": torch.__version__, "batch": batch,
                                                  "runtime": runtime, "variants": variants, "rows": rows}, indent=2))
    by = {(r["model"], r["method"], r["path"]): r for r in rows}
    print("\nfpq path, each method's step / the FP step (and FPQ / LSQ):")
    for arch in args.models.split(","):
        fp = by.get((arch, "fp", "fpq"))
        parts = [f"{m} {by[(arch, m, 'fpq')]['s_per_epoch'] / fp['s_per_epoch']:.2f}x" for m in args.methods.split(",")
                 if fp and m != "fp" and (arch, m, "fpq") in by]
        if (arch, "lsq", "fpq") in by and (arch, "fpq", "fpq") in by:
            parts.append(f"FPQ/LSQ {by[(arch, 'fpq', 'fpq')]['s_per_epoch'] / by[(arch, 'lsq', 'fpq')]['s_per_epoch']:.2f}")
        print(f"  {arch}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
