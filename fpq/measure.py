"""Measurements of a saved model: final Hessian trace / top eigenvalue (Fig. 5) and output variance (Fig. 1).

Each writes one JSON result with the run's identity, the measurement, its settings, the run's
config and the provenance of this measurement (device, versions, wall time).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from fpq.build import load_model, resolve_device
from fpq.config import to_dict
from fpq.data import DeviceLoader, load_arrays
from fpq.hessian import hutchinson_trace, top_eigenvalue
from fpq.io import write_json
from fpq.provenance import provenance
from fpq.train import hessian_batches
from fpq.variance import output_variance


def _load(model_path: str | Path, device_name: str, split: str, batch_size: int):
    device = resolve_device(device_name)
    model, cfg = load_model(model_path, device)
    data = load_arrays(cfg.data)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return model, cfg, device, DeviceLoader(x, y, cfg.data.dataset, batch_size, device, train=False)


def _write(out: str | Path, result: dict, cfg, device, started: float) -> dict:
    result = {"run_id": cfg.run_id, "method": cfg.method, "arch": cfg.arch, "dataset": cfg.data.dataset,
              "w_bits": cfg.quant.w_bits, "a_bits": cfg.quant.a_bits, "seed": cfg.seed, **result,
              "wall_time_s": time.time() - started, "config": to_dict(cfg), **provenance(cfg.runtime, device)}
    write_json(out, result)
    return result


def measure_hessian(model_path, out, probes: int = 64, batches: int = 4, batch_size: int = 256, seed: int = 1234,
                    eigen_iters: int = 20, device: str = "auto") -> dict:
    """Hutchinson trace on a fixed, seeded set of training images; top eigenvalue if eigen_iters."""
    started = time.time()
    model, cfg, dev, loader = _load(model_path, device, "train", batch_size)
    cfg = dataclasses.replace(cfg, hessian=dataclasses.replace(cfg.hessian, probes=probes, batches=batches,
                                                               batch_size=batch_size, seed=seed))
    fixed = hessian_batches(cfg, loader)
    result = {"estimator": "hutchinson-rademacher, eval mode, CE, conv/linear weights",
              "images": sum(int(y.shape[0]) for _, y in fixed), "hessian_seed": seed,
              "trace": hutchinson_trace(model, fixed, probes=probes, seed=seed).as_dict()}
    if eigen_iters:
        result["top_eigenvalue"] = top_eigenvalue(model, fixed, iters=eigen_iters, seed=seed)
    return _write(out, result, cfg, dev, started)


def measure_variance(model_path, out, sigma: float = 0.1, images: int = 500, samples: int = 16, seed: int = 0,
                     device: str = "auto") -> dict:
    """Output variance under Gaussian noise on a seeded set of test images."""
    started = time.time()
    model, cfg, dev, loader = _load(model_path, device, "test", 1000)
    x, _ = loader.sample(min(images, loader.num_images), seed=seed)
    return _write(out, output_variance(model, x, sigma, samples, seed=seed), cfg, dev, started)
