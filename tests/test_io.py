import os
import stat

import pytest

from fpq.errors import OutputError
from fpq.io import current_umask, ensure_writable, save_npz, write_json


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         ids=["umask 022", "umask 002", "umask 077"])
def test_outputs_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    written = [write_json(tmp_path / "metrics.json", {"top1": 1.0}), save_npz(tmp_path / "cache.npz")]
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [mode, mode]


def test_ensure_writable_creates_the_folder(tmp_path):
    folder = ensure_writable(tmp_path / "results" / "runs")
    assert folder.is_dir() and os.listdir(folder) == []


def test_ensure_writable_refuses_a_file(tmp_path):
    path = tmp_path / "results"
    path.write_text("not a folder")
    with pytest.raises(OutputError, match=f"output folder {path} cannot be written: it is not a folder"):
        ensure_writable(path)
    with pytest.raises(OutputError, match="Not a directory"):
        ensure_writable(path / "runs")


def test_ensure_writable_refuses_a_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputError, match=f"output folder {folder} cannot be written: Permission denied"):
            ensure_writable(folder)
    finally:
        folder.chmod(0o700)
