"""Build tests/data/cifar10-fixture.npz, the small real CIFAR-10 set the tests ship with.

It is a class-balanced, lossless subset of the shared ``cifar10-mini.npz`` (see
shared/data/README.md): the first ``--train-per-class`` training images and the first
``--test-per-class`` test images of each of the 10 classes, in source file order, with the exact
uint8 pixels of the source. Every key of the source is kept, with its dtype: per-image arrays
(``x_*``, ``y_*``, ``*_orig_index``, ``test_lossless``) are subset, ``class_names`` is copied.

The build is deterministic: the arrays are identical on every run and so is the file, because the
timestamps numpy.savez_compressed writes into the zip are reset to a fixed date.

    python tests/data/make_fixture.py --source ../shared/data/cifar10-mini.npz \
        --out tests/data/cifar10-fixture.npz
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

NUM_CLASSES = 10
# per-image arrays of each split (subset with that split's chosen rows); the rest is copied
SPLIT_KEYS = {"train": ("x_train", "y_train", "train_orig_index"),
              "test": ("x_test", "y_test", "test_lossless", "test_orig_index")}
META_KEYS = ("class_names",)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first k images of each class, in their original (file) order."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    short = {c: int(n) for c, n in enumerate(counts) if n < k}
    if short:
        raise SystemExit(f"the source has fewer than {k} images of classes {short}")
    keep = np.zeros(labels.shape, bool)
    for c in range(NUM_CLASSES):
        keep[np.flatnonzero(labels == c)[:k]] = True
    return np.flatnonzero(keep)


def build(source: dict, per_class: dict) -> dict:
    unknown = set(source) - {*SPLIT_KEYS["train"], *SPLIT_KEYS["test"], *META_KEYS}
    if unknown:  # never drop a key silently
        raise SystemExit(f"unexpected keys in the source: {sorted(unknown)}")
    out = {}
    for split, keys in SPLIT_KEYS.items():
        idx = first_per_class(source[f"y_{split}"], per_class[split])
        out.update({k: source[k][idx] for k in keys if k in source})
    out.update({k: source[k] for k in META_KEYS if k in source})
    return {k: out[k] for k in source}  # the source's key order


def save_reproducible(path: Path, arrays: dict) -> None:
    """numpy.savez_compressed, then reset each zip entry's timestamp so the bytes are reproducible."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
            with dst.open(entry, "w", force_zip64=True) as f:
                f.write(src.read(info))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, required=True, help="cifar10-mini.npz (shared/data)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cifar10-fixture.npz")
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--test-per-class", type=int, default=50)
    args = p.parse_args()
    with np.load(args.source, allow_pickle=False) as f:
        source = {k: f[k] for k in f.files}
    arrays = build(source, {"train": args.train_per_class, "test": args.test_per_class})
    save_reproducible(args.out, arrays)
    for k, a in arrays.items():
        print(f"{k:17s} {str(a.dtype):6s} {a.shape}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
