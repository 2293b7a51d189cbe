"""The agreement rows of the harness: two paths of one step that must train the same model.

  agree         the eager step (a) against the step replayed from a CUDA graph (b: runtime.cuda_graph)
  agree-triton  the torch path (a) against the Triton kernels (b: runtime.kernels=triton), both on
                the config's step (the CUDA graph where it has one)

Two students built from the same teacher, the same calibration and the same seed, one per path,
take the same batches:
 1. 50 steps' losses, side by side (max |difference|, and relative to the loss). Both draw SFP's
    gate on the device, so they consume one random stream the same way (the Triton kernels draw
    SFP's noise from their own Philox stream: `agree-triton` runs LSQ+CSD, which has none);
 2. with --data (a CIFAR .npz: .devdata/cifar10.npz on the GPU machine), one epoch each on the real
    train set from the same state, then the train and test accuracy of each: a difference within
    seed noise says both paths train the same model.
The tests check the graph on the CPU with a stand-in graph (tests/run/test_graph_step.py) and the
kernels in Triton's interpreter (tests/kernels), and the harness's smoke run runs both rows.
"""
from __future__ import annotations

import copy
import time

from build import build_step

# path -> (check name, (name, runtime keys) of path a, of path b)
PAIRS = {"agree": ("graph_vs_eager", ("eager", {"cuda_graph": False, "kernels": "torch"}),
                   ("graph", {"cuda_graph": True, "kernels": "torch"})),
         "agree-triton": ("triton_vs_torch", ("torch", {"kernels": "torch"}), ("triton", {"kernels": "triton"}))}


def _students(cfg, device, x_u8, y_u8, pair: str = "agree"):
    """[(step_fn, objective, batches, TrainStep)] of paths a and b, from one teacher."""
    import dataclasses

    import torch

    from fpq.models import create_model
    from fpq.run.step import set_capturable

    torch.manual_seed(0)
    teacher = create_model(cfg.arch, cfg.data.num_classes)
    built = []
    for _, keys in PAIRS[pair][1:]:
        run_cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, compile=False, **keys))
        torch.manual_seed(1)
        built.append(build_step(run_cfg, device, x_u8, y_u8, copy.deepcopy(teacher)))
        set_capturable(built[-1][1].student, True)  # one way of drawing SFP's gate for both
    return built


def loss_agreement(cfg, device, x_u8, y_u8, steps: int = 50, pair: str = "agree") -> dict:
    import torch

    built = _students(cfg, device, x_u8, y_u8, pair)
    losses = []
    for step_fn, *_ in built:
        torch.manual_seed(2)
        # A replayed step returns the graph's static loss tensor, rewritten by the next replay: copy it.
        losses.append(torch.stack([step_fn()[0].detach().float().clone() for _ in range(steps)]).cpu())
    a, b = losses
    (name_a, _), (name_b, _) = PAIRS[pair][1:]
    diff = (a - b).abs()
    g = built[1][3].graph
    row = {"steps": steps, "loss_max_abs_diff": float(diff.max()),
           "loss_max_rel_diff": float((diff / a.abs().clamp_min(1e-6)).max()),
           "loss_first": float(a[0]), f"loss_last_{name_a}": float(a[-1]), f"loss_last_{name_b}": float(b[-1])}
    if pair == "agree":
        row.update(captured=g is not None and g.captured,
                   failure=g.failure if g is not None else f"no CUDA graph on {device.type}: both steps eager")
    else:
        row["kernels_in_force"] = [objective.kernels for _, objective, *_ in built]
    return row


def epoch_agreement(cfg, device, npz: str, pair: str = "agree") -> dict:
    """One epoch of each on the real train set from the same state; train and test accuracy of each."""
    import dataclasses

    import torch

    from fpq.config import DataConfig
    from fpq.run.data import DeviceLoader, load_arrays
    from fpq.run.step import EvalForward
    from fpq.run.train import evaluate, train_epoch

    data = load_arrays(DataConfig(source="npz", path=npz))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="npz", path=npz))
    built = _students(cfg, device, data.x_train, data.y_train, pair)
    test = DeviceLoader(data.x_test, data.y_test, "cifar10", 1000, device, train=False,
                        channels_last=cfg.runtime.channels_last)
    out = {}
    names = [name for name, _ in PAIRS[pair][1:]]
    for name, (_, objective, _, step) in zip(names, built):
        loader = DeviceLoader(data.x_train, data.y_train, "cifar10", cfg.optim.batch_size, device, train=True, seed=0,
                              channels_last=cfg.runtime.channels_last, drop_last=True)
        torch.manual_seed(3)
        t0 = time.perf_counter()
        row = train_epoch(objective.student, step, loader, 0)
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        seconds = time.perf_counter() - t0
        forward = EvalForward(objective.student, cfg.runtime.bf16, graph=step.graph is not None)
        out[name] = {"train_acc": row["train_acc"], **evaluate(objective.student, test, forward),
                     "epoch_s": round(seconds, 3)}
    a, b = names
    out["train_acc_diff"] = out[b]["train_acc"] - out[a]["train_acc"]
    out["test_acc_diff"] = out[b]["test_acc"] - out[a]["test_acc"]
    return out


def measure(args, cfg, device, x_u8, y_u8, row, write) -> dict:
    """The row of `args.path` (agree or agree-triton): `row(status, checks, build_s)` makes it,
    `write(row)` records it; the 50 steps are written before the epoch starts."""
    name = PAIRS[args.path][0]
    t0 = time.perf_counter()
    checks = {f"{name}_50_steps": loss_agreement(cfg, device, x_u8, y_u8, args.agree_steps, args.path)}
    write(row("building", checks, None))
    print(f"  50 steps: {checks[f'{name}_50_steps']}", flush=True)
    if args.data:
        checks[f"{name}_one_epoch"] = epoch_agreement(cfg, device, args.data, args.path)
        print(f"  one epoch: {checks[f'{name}_one_epoch']}", flush=True)
    return row("ok", checks, round(time.perf_counter() - t0, 3))
