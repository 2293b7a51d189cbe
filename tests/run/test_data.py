import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fpq.config import DataConfig
from fpq.run.data import MEAN_STD, DataError, DeviceLoader, load_arrays, random_crop_flip, read_npz, stratified_subset
from tests.conftest import make_arrays


def save(tmp_path, arrays, name="d.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_the_shipped_cifar10_fixture_loads_balanced(mini_npz):
    data = read_npz(mini_npz, "cifar10")
    assert data.x_train.shape == (2000, 32, 32, 3) and data.x_test.shape == (500, 32, 32, 3)
    assert data.y_train.dtype == np.int64
    assert np.bincount(data.y_train).tolist() == [200] * 10 and np.bincount(data.y_test).tolist() == [50] * 10


def test_subsets_are_class_balanced(mini_npz):
    data = load_arrays(DataConfig(source="npz", path=str(mini_npz), train_subset=1000, test_subset=105))
    assert np.bincount(data.y_train).tolist() == [100] * 10
    assert np.bincount(data.y_test).tolist() == [11] * 5 + [10] * 5


def test_stratified_subset_keeps_order():
    y = np.array([0, 1, 0, 1, 0, 1])
    assert stratified_subset(y, 4, 2).tolist() == [0, 1, 2, 3]


def _mutations():
    a = make_arrays
    return [
        ("missing keys", {k: v for k, v in a().items() if k != "y_test"}, "missing keys ['y_test']"),
        ("float images", {**a(), "x_train": a()["x_train"].astype(np.float32)}, "x_train has dtype float32"),
        ("wrong shape", {**a(), "x_test": a()["x_test"].reshape(20, 3, 32, 32)}, "x_test has shape (20, 3, 32, 32)"),
        ("float labels", {**a(), "y_train": a()["y_train"].astype(np.float32)}, "y_train has dtype float32"),
        ("label count", {**a(), "y_test": a()["y_test"][:5]}, "y_test has shape (5,)"),
        ("label range", {**a(), "y_train": a()["y_train"] + 5}, "outside [0, 10) for cifar10"),
        ("negative label", {**a(), "y_test": a()["y_test"] - 1}, "outside [0, 10)"),
        ("too few classes", make_arrays(classes=7), "y_train holds 7 classes but cifar10 has 10"),
        ("class names", {**a(), "class_names": np.array(["a", "b"])}, "class_names lists 2 classes"),
        ("empty test split", {**a(), "x_test": a()["x_test"][:0], "y_test": a()["y_test"][:0]},
         "x_test holds no test images"),
        ("empty train split", {**a(), "x_train": a()["x_train"][:0], "y_train": a()["y_train"][:0]},
         "x_train holds no train images"),
    ]


@pytest.mark.parametrize("name, arrays, message", _mutations(), ids=[m[0] for m in _mutations()])
def test_bad_archives_are_refused_with_the_problem_named(tmp_path, name, arrays, message):
    with pytest.raises(DataError) as err:
        read_npz(save(tmp_path, arrays), "cifar10")
    assert message in str(err.value)


def test_cifar10_archive_is_not_cifar100(mini_npz):
    with pytest.raises(DataError, match="y_train holds 10 classes but cifar100 has 100"):
        read_npz(mini_npz, "cifar100")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_npz(tmp_path / "nope.npz", "cifar10")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_npz(bad, "cifar10")
    good = save(tmp_path, make_arrays())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DataError, match="not a readable .npz"):
        read_npz(truncated, "cifar10")


def test_a_file_that_is_not_a_zip_archive_is_named_so(tmp_path):
    text = tmp_path / "cifar10.npz"
    text.write_text("x_train,y_train\n")
    with pytest.raises(DataError, match="is not a .npz \\(zip\\) archive") as err:
        read_npz(text, "cifar10")
    assert "pickle" not in str(err.value)


def _lopsided_arrays():
    """40 train images, 4 a class, except class 3 with 1 image (its others relabelled 4)."""
    a = make_arrays()
    y = a["y_train"].copy()
    y[np.flatnonzero(y == 3)[1:]] = 4
    return {**a, "y_train": y}


@pytest.mark.parametrize("arrays, subsets, message", [
    (make_arrays(), {"train_subset": 41}, "data.train_subset is 41, more than the 40 images available"),
    (make_arrays(), {"test_subset": 21}, "data.test_subset is 21, more than the 20 images available"),
    (make_arrays(), {"train_subset": 5}, "data.train_subset is 5, below the minimum of 10"),
    (_lopsided_arrays(), {"train_subset": 20}, "needs 2 images of class 3, there are only 1"),
], ids=["train too large", "test too large", "fewer than classes", "class short"])
def test_subsets_that_cannot_be_balanced_are_refused(tmp_path, arrays, subsets, message):
    cfg = DataConfig(source="npz", path=str(save(tmp_path, arrays)), **subsets)
    with pytest.raises(DataError, match=message):
        load_arrays(cfg)


def test_offline_download_says_so_and_points_at_npz(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as err:
        load_arrays(DataConfig(dataset="cifar10", source="torchvision", root=str(tmp_path)))
    message = str(err.value)
    assert "downloading cifar10 from torchvision" in message and "name resolution" in message
    assert "data: {cifar10: {source: npz, path: /path/to/cifar10.npz}}" in message
    assert not (tmp_path / "cifar10.npz").exists()


def _write_cifar100_pickles(root, n_train=200, n_test=100):
    """A tiny archive in the original CIFAR-100 python format (dicts of pickled arrays)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [i % 100 for i in range(n)]
        images[split] = (data, labels)
        with open(folder / split, "wb") as f:
            pickle.dump({"data": data, "fine_labels": labels, "coarse_labels": [l // 5 for l in labels],
                         "filenames": [f"{i}.png" for i in range(n)], "batch_label": split}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)],
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f)
    return images


def test_cifar100_through_torchvision_from_the_original_format(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv

    images = _write_cifar100_pickles(tmp_path)
    # The tiny files cannot match the real archive's md5 sums; everything else is torchvision's.
    monkeypatch.setattr(tv.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv, "check_integrity", lambda *a, **k: True)
    data = load_arrays(DataConfig(dataset="cifar100", source="torchvision", root=str(tmp_path)))
    assert (tmp_path / "cifar100.npz").is_file()  # converted once, cached
    assert data.x_train.shape == (200, 32, 32, 3) and data.num_classes == 100
    raw, labels = images["train"]
    assert np.array_equal(data.x_train[7], raw[7].reshape(3, 32, 32).transpose(1, 2, 0))
    assert data.y_train.tolist() == labels
    cached = read_npz(tmp_path / "cifar100.npz", "cifar100")
    assert np.array_equal(cached.x_test, data.x_test)


def _naive_crop_flip(x, offsets, flips):
    padded = F.pad(x, (4, 4, 4, 4))
    out = []
    for img, (dy, dx), flip in zip(padded, offsets.tolist(), flips.tolist()):
        crop = img[:, dy:dy + 32, dx:dx + 32]
        out.append(crop.flip(2) if flip else crop)
    return torch.stack(out)


def test_random_crop_flip_matches_a_per_image_reference():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [8, 8], [4, 4], [1, 7], [8, 0], [3, 2]])
    flips = torch.tensor([False, True, False, True, True, False])
    out = random_crop_flip(x, offsets, flips)
    assert out.dtype == torch.uint8
    assert torch.equal(out, _naive_crop_flip(x, offsets, flips))
    assert torch.equal(out[2], x[2])  # offset 4 = the original image


def _loader(train=True, seed=0):
    a = make_arrays(n_train=50)
    return DeviceLoader(a["x_train"], a["y_train"], "cifar10", 16, torch.device("cpu"), train=train, seed=seed)


def test_loader_epochs_are_seeded_and_reshuffled():
    first = [y.tolist() for _, y in _loader().epoch(0)]
    again = [y.tolist() for _, y in _loader().epoch(0)]
    second = [y.tolist() for _, y in _loader().epoch(1)]
    other_seed = [y.tolist() for _, y in _loader(seed=1).epoch(0)]
    assert first == again and first != second and first != other_seed
    assert sorted(sum(first, [])) == sorted(make_arrays(n_train=50)["y_train"].tolist())
    assert [len(b) for b in first] == [16, 16, 16, 2]
    xs = [x for x, _ in _loader().epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(xs, [x for x, _ in _loader().epoch(0)]))


def test_eval_loader_is_ordered_normalized_and_unaugmented():
    loader = _loader(train=False)
    x, y = next(iter(loader.epoch()))
    raw = torch.from_numpy(make_arrays(n_train=50)["x_train"][:16]).permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in MEAN_STD["cifar10"])
    assert torch.allclose(x, (raw - mean) / std, atol=1e-5)
    assert y.tolist() == list(range(10)) + list(range(6))


def test_fetch_data_command_converts_once(tmp_path, monkeypatch, capsys):
    import torchvision.datasets.cifar as tv

    from fpq.cli import main

    _write_cifar100_pickles(tmp_path)
    monkeypatch.setattr(tv.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv, "check_integrity", lambda *a, **k: True)
    assert main(["fetch-data", "--dataset", "cifar100", "--root", str(tmp_path)]) == 0
    assert "200 train / 100 test images, 100 classes" in capsys.readouterr().out
    stamp = (tmp_path / "cifar100.npz").stat().st_mtime_ns
    monkeypatch.setattr(tv.CIFAR10, "__init__", lambda *a, **k: pytest.fail("downloaded twice"))
    assert main(["fetch-data", "--dataset", "cifar100", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "cifar100.npz").stat().st_mtime_ns == stamp
