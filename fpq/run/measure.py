"""Measurements of a saved model: final Hessian trace / top eigenvalue (Fig. 5) and output variance (Fig. 1).

Each writes one JSON result with the run's identity (its cell), the measurement, its settings,
the run's config and the provenance of this measurement (device, versions, wall time). The
model, the device and the data are checked first, then the output folder, all before the work
starts. A run that ended as failed has no model to measure: its measurement is recorded as
failed too, so the jobs after it still run.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from fpq.config import FinalHessianConfig, VarianceConfig
from fpq.io import ensure_writable, failed_run, write_json


def _skip(out: str | Path, failed: dict, settings: dict) -> dict:
    ensure_writable(Path(out).parent)
    result = {k: failed.get(k) for k in ("run_id", "cell", "stage")}
    result.update(status="failed", error=f"run failed, nothing to measure: {failed.get('error')}", settings=settings)
    write_json(out, result)
    return result


def _load(model_path: str | Path, out: str | Path, device_name: str, split: str, batch_size: int):
    """The model, its config, the device and a loader of `split`; the output folder is made (and
    proved writable) only once all of them load, so bad input leaves no empty folder behind."""
    from fpq.run.build import load_model, resolve_device
    from fpq.run.data import DeviceLoader, load_arrays

    device = resolve_device(device_name, key="--device")
    model, cfg = load_model(model_path, device)
    data = load_arrays(cfg.data)
    ensure_writable(Path(out).parent)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return model, cfg, device, DeviceLoader(x, y, cfg.data.dataset, batch_size, device, train=False)


def _write(out: str | Path, result: dict, cfg, device, settings: dict, started: float) -> dict:
    from fpq.config import to_dict
    from fpq.run.cell import Cell
    from fpq.run.provenance import provenance

    result = {"run_id": cfg.run_id, "cell": Cell.from_config(cfg).as_dict(), "status": "ok", **result,
              "settings": settings, "wall_time_s": time.time() - started, "config": to_dict(cfg),
              **provenance(cfg.runtime, device)}
    write_json(out, result)
    return result


def measure_hessian(model_path, out, settings: FinalHessianConfig = FinalHessianConfig(), device: str = "auto") -> dict:
    """Hutchinson trace on a fixed, seeded set of training images; top eigenvalue if eigen_iters."""
    if (failed := failed_run(model_path)) is not None:
        return _skip(out, failed, dataclasses.asdict(settings))
    from fpq.measure.hessian import hutchinson_trace, top_eigenvalue
    from fpq.run.train import hessian_batches

    started = time.time()
    model, cfg, dev, loader = _load(model_path, out, device, "train", settings.batch_size)
    cfg = dataclasses.replace(cfg, hessian=dataclasses.replace(
        cfg.hessian, probes=settings.probes, batches=settings.batches, batch_size=settings.batch_size,
        seed=settings.seed))
    fixed = hessian_batches(cfg, loader)
    result = {"estimator": "hutchinson-rademacher, eval mode, CE, conv/linear weights",
              "images": sum(int(y.shape[0]) for _, y in fixed),
              "trace": hutchinson_trace(model, fixed, probes=settings.probes, seed=settings.seed).as_dict()}
    if settings.eigen_iters:
        result["top_eigenvalue"] = top_eigenvalue(model, fixed, iters=settings.eigen_iters, seed=settings.seed)
    return _write(out, result, cfg, dev, dataclasses.asdict(settings), started)


def measure_variance(model_path, out, settings: VarianceConfig = VarianceConfig(), device: str = "auto") -> dict:
    """Output variance under Gaussian noise on a seeded set of test images."""
    if (failed := failed_run(model_path)) is not None:
        return _skip(out, failed, dataclasses.asdict(settings))
    from fpq.measure.variance import output_variance

    started = time.time()
    model, cfg, dev, loader = _load(model_path, out, device, "test", 1000)
    x, _ = loader.sample(min(settings.images, loader.num_images), seed=settings.seed)
    result = output_variance(model, x, settings.sigma, settings.samples, seed=settings.seed)
    return _write(out, result, cfg, dev, dataclasses.asdict(settings), started)
