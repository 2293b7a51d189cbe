"""CIFAR-10/100 as uint8 arrays, validated; a device-resident loader with on-device augmentation.

Sources: torchvision's CIFAR10/CIFAR100 (downloaded into a data root on a connected machine and
converted once to `<root>/<dataset>.npz`), or any existing `.npz` of the same layout:
x_train (N,32,32,3) uint8, y_train (N,) int, x_test (M,32,32,3) uint8, y_test (M,) int.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from fpq.config import DATASETS, DataConfig
from fpq.errors import DataError
from fpq.io import save_npz

KEYS = ("x_train", "y_train", "x_test", "y_test")
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclass(frozen=True)
class CifarArrays:
    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset]


def validate_arrays(arrays: dict, dataset: str, origin: str) -> CifarArrays:
    """Check keys, dtypes, shapes, label range and class count; name the problem if any."""
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(f"{origin}: missing keys {missing} (expected {list(KEYS)})")
    num_classes = DATASETS[dataset]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{origin}: x_{split} has dtype {x.dtype}, expected uint8")
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise DataError(f"{origin}: x_{split} has shape {x.shape}, expected (N, 32, 32, 3)")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{origin}: y_{split} has dtype {y.dtype}, expected an integer type")
        if y.shape != (x.shape[0],):
            raise DataError(f"{origin}: y_{split} has shape {y.shape}, expected ({x.shape[0]},)")
        if x.shape[0] == 0:  # an empty test split would fail only after a whole training epoch
            raise DataError(f"{origin}: x_{split} holds no {split} images")
        if y.min() < 0 or y.max() >= num_classes:
            raise DataError(f"{origin}: y_{split} has labels in [{y.min()}, {y.max()}], outside "
                            f"[0, {num_classes}) for {dataset}")
    present = np.unique(arrays["y_train"]).size
    if present != num_classes:
        raise DataError(f"{origin}: y_train holds {present} classes but {dataset} has {num_classes}")
    if "class_names" in arrays and len(arrays["class_names"]) != num_classes:
        raise DataError(f"{origin}: class_names lists {len(arrays['class_names'])} classes, "
                        f"{dataset} has {num_classes}")
    return CifarArrays(dataset, x_train=np.ascontiguousarray(arrays["x_train"]),
                       y_train=arrays["y_train"].astype(np.int64),
                       x_test=np.ascontiguousarray(arrays["x_test"]),
                       y_test=arrays["y_test"].astype(np.int64))


def read_npz(path: str | Path, dataset: str) -> CifarArrays:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if not zipfile.is_zipfile(path):  # numpy would try it as a pickle and complain about that
        raise DataError(f"data file {path} is not a readable .npz archive: it is not a .npz (zip) archive "
                        f"(truncated, or another format)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise DataError(f"data file {path} is not a readable .npz archive ({err})") from None
    return validate_arrays(arrays, dataset, str(path))


def cache_path(dataset: str, root: str | Path) -> Path:
    return Path(root) / f"{dataset}.npz"


def fetch_torchvision(dataset: str, root: str | Path) -> Path:
    """Download with torchvision (verified by its checksums) and convert once to <root>/<dataset>.npz.

    A file lock makes concurrent jobs wait for one download instead of racing on the same files.
    """
    import fcntl

    from torchvision import datasets

    cache = cache_path(dataset, root)
    if cache.is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{dataset}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.is_file():  # another job finished the download while we waited
            return cache
        cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dataset]
        try:
            train = cls(str(root), train=True, download=True)
            test = cls(str(root), train=False, download=True)
        except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad checksum a RuntimeError
            raise DataError(f"downloading {dataset} from torchvision into {root} failed ({err}); offline, "
                            f"point the workflow config at a copy: data: {{{dataset}: {{source: npz, "
                            f"path: /path/to/{dataset}.npz}}}}") from None
        save_npz(cache, x_train=np.asarray(train.data, dtype=np.uint8),
                 y_train=np.asarray(train.targets, np.int64), x_test=np.asarray(test.data, dtype=np.uint8),
                 y_test=np.asarray(test.targets, np.int64), class_names=np.asarray(train.classes))
    return cache


def stratified_subset(y: np.ndarray, n: int, num_classes: int, key: str = "subset") -> np.ndarray:
    """Indices of the first n//C images of each class (remainder to the lowest classes), in order.

    Refuses a subset it cannot balance rather than return fewer images or fewer classes.
    """
    if n > len(y):
        raise DataError(f"{key} is {n}, more than the {len(y)} images available")
    per_class = [n // num_classes + (1 if c < n % num_classes else 0) for c in range(num_classes)]
    picked = []
    for c, k in enumerate(per_class):
        idx = np.flatnonzero(y == c)
        if len(idx) < k:
            raise DataError(f"{key} is {n}: a balanced subset needs {k} images of class {c}, "
                            f"there are only {len(idx)}")
        picked.append(idx[:k])
    return np.sort(np.concatenate(picked))


def load_arrays(cfg: DataConfig) -> CifarArrays:
    path = cfg.path if cfg.source == "npz" else fetch_torchvision(cfg.dataset, cfg.root)
    data = read_npz(path, cfg.dataset)
    parts = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}
    if 0 < cfg.train_subset < data.num_classes:  # fewer images than classes trains on a few classes
        raise DataError(f"data.train_subset is {cfg.train_subset}, below the minimum of {data.num_classes} "
                        f"(one image per class of {cfg.dataset})")
    for split, n in (("train", cfg.train_subset), ("test", cfg.test_subset)):
        if n:
            idx = stratified_subset(parts[f"y_{split}"], n, data.num_classes, f"data.{split}_subset")
            parts[f"x_{split}"], parts[f"y_{split}"] = parts[f"x_{split}"][idx], parts[f"y_{split}"][idx]
    return CifarArrays(cfg.dataset, **parts)


def random_crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Crop 32x32 at per-image offsets from the zero-padded batch and mirror where flips is set.

    One gather on the device (uint8 in, uint8 out): no host copy, no per-image Python loop.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, :1] + ar_h
    cols = offsets[:, 1:] + ar_w
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


class DeviceLoader:
    """Batches from uint8 tensors that live on the training device.

    uint8 on the device: augmentation costs no host copy and the whole CIFAR train set is 150 MB.
    The order and augmentation of epoch e depend only on (seed, e), so a resumed run sees the
    same batches as an uninterrupted one.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, dataset: str, batch_size: int, device: torch.device,
                 train: bool, seed: int = 0, channels_last: bool = False, drop_last: bool = False):
        self.x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device)
        self.y = torch.from_numpy(y.astype(np.int64)).to(device)
        mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in MEAN_STD[dataset])
        self.scale, self.shift = 1.0 / (255.0 * std), mean / std
        self.batch_size, self.train, self.seed, self.device = batch_size, train, seed, device
        # A compiled step sees one batch shape: the last partial batch of a shuffled epoch is dropped
        # (different images each epoch) instead of paying a second compile for its shape.
        self.drop_last = drop_last and self.x.shape[0] >= batch_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return self.x.shape[0]

    def normalize(self, x_u8: torch.Tensor) -> torch.Tensor:
        out = x_u8.float() * self.scale - self.shift
        return out.contiguous(memory_format=self.memory_format)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.x.shape[0]
        if self.train:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=gen).to(self.device)
            offsets = torch.randint(0, 9, (n, 2), generator=gen).to(self.device)
            flips = (torch.rand(n, generator=gen) < 0.5).to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if self.train:
                idx = order[start:start + self.batch_size]
                xb = random_crop_flip(self.x[idx], offsets[start:start + self.batch_size],
                                      flips[start:start + self.batch_size])
                yield self.normalize(xb), self.y[idx]
            else:
                yield self.normalize(self.x[start:start + self.batch_size]), self.y[start:start + self.batch_size]

    def sample(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed, seeded set of un-augmented images (calibration, Hessian batches)."""
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(self.x.shape[0], generator=gen)[:count].to(self.device)
        return self.normalize(self.x[idx]), self.y[idx]
