"""The GPU half of "a CUDA-graph step equals the eager step": the harness row `agree`.

Two students built from the same teacher, the same calibration and the same seed, one stepping
eagerly and one replaying its step from a CUDA graph (runtime.cuda_graph), take the same batches:
 1. 50 steps' losses, side by side (max |difference|, and relative to the loss). Both draw SFP's
    gate on the device (the graph's way), so they consume one random stream the same way;
 2. with --data (a CIFAR .npz: .devdata/cifar10.npz on the GPU machine), one epoch each on the real
    train set from the same state, then the test accuracy of each: a difference within seed noise
    says the graph trains the same model.
The tests check this on the CPU with a stand-in graph (tests/run/test_graph_step.py), bit for bit.
"""
from __future__ import annotations

import copy
import time


def _students(cfg, device, x_u8, y_u8):
    """(eager step, graph step) pairs of (step_fn, objective, batches, TrainStep) from one teacher."""
    import dataclasses

    import torch

    from bench_path import build_step
    from fpq.models import create_model
    from fpq.run.step import set_capturable

    torch.manual_seed(0)
    teacher = create_model(cfg.arch, cfg.data.num_classes)
    built = []
    for graph in (False, True):
        run_cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, cuda_graph=graph, compile=False))
        torch.manual_seed(1)
        built.append(build_step(run_cfg, device, x_u8, y_u8, copy.deepcopy(teacher)))
        set_capturable(built[-1][1].student, True)  # one way of drawing SFP's gate for both
    return run_cfg, built


def loss_agreement(cfg, device, x_u8, y_u8, steps: int = 50) -> dict:
    import torch

    _, built = _students(cfg, device, x_u8, y_u8)
    losses = []
    for step_fn, *_ in built:
        torch.manual_seed(2)
        # A replayed step returns the graph's static loss tensor, rewritten by the next replay: copy it.
        losses.append(torch.stack([step_fn()[0].detach().float().clone() for _ in range(steps)]).cpu())
    eager, graph = losses
    diff = (eager - graph).abs()
    g = built[1][3].graph
    return {"steps": steps, "loss_max_abs_diff": float(diff.max()),
            "loss_max_rel_diff": float((diff / eager.abs().clamp_min(1e-6)).max()),
            "loss_first": float(eager[0]), "loss_last_eager": float(eager[-1]), "loss_last_graph": float(graph[-1]),
            "captured": g is not None and g.captured,
            "failure": (g.failure if g is not None else f"no CUDA graph on {device.type}: both steps eager")}


def epoch_agreement(cfg, device, npz: str) -> dict:
    """One epoch of each on the real train set from the same state; test accuracy of each."""
    import dataclasses

    import torch

    from fpq.config import DataConfig
    from fpq.run.data import DeviceLoader, load_arrays
    from fpq.run.step import EvalForward
    from fpq.run.train import evaluate, train_epoch

    data = load_arrays(DataConfig(source="npz", path=npz))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="npz", path=npz))
    run_cfg, built = _students(cfg, device, data.x_train, data.y_train)
    test = DeviceLoader(data.x_test, data.y_test, "cifar10", 1000, device, train=False,
                        channels_last=cfg.runtime.channels_last)
    out = {}
    for name, (_, objective, _, step) in zip(("eager", "graph"), built):
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
    out["test_acc_diff"] = out["graph"]["test_acc"] - out["eager"]["test_acc"]
    return out
