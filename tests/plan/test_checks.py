"""The checks the Snakefile makes when it is read: a missing .npz names its key; a report of a config
that has not run says what to add."""
import pytest

from fpq.errors import ConfigError
from fpq.plan.checks import check_data_files, check_report_outputs, reporting
from fpq.plan.grid import expand
from tests.fake_results import workflow_config

GRIDS = {"ablation": {"datasets": ["cifar10"], "archs": ["resnet20"], "bits": ["w2a4"], "methods": ["lsq"]},
         "main": {"datasets": ["cifar100"], "archs": ["resnet20"], "bits": ["w2a4"], "methods": ["lsq"]}}


def test_every_missing_npz_is_named_by_its_config_key(tmp_path):
    (tmp_path / "c10.npz").write_bytes(b"")
    config = workflow_config(tmp_path / "results", GRIDS, data={
        "cifar10": {"source": "npz", "path": str(tmp_path / "c10.npz")},
        "cifar100": {"source": "npz", "path": str(tmp_path / "c100.npz")}})
    with pytest.raises(ConfigError) as err:
        check_data_files(expand(config), "workflow config my.yaml")
    assert str(err.value) == (f"workflow config my.yaml: data.cifar100.path: {tmp_path}/c100.npz does not exist (looked "
                              f"for {tmp_path}/c100.npz); point it at a CIFAR .npz or use source: torchvision")
    (tmp_path / "c100.npz").write_bytes(b"")
    check_data_files(expand(config))  # both there: nothing to say
    download = workflow_config(tmp_path / "results", GRIDS, data={"cifar10": {"source": "torchvision"},
                                                                  "cifar100": {"source": "torchvision"}})
    check_data_files(expand(download))  # fetch_data makes those


def test_a_report_of_outputs_that_do_not_exist_says_what_to_add(tmp_path):
    made, absent = tmp_path / "t.html", tmp_path / "f.png"
    made.write_text("x")
    config = {"name": "quick"}
    check_report_outputs(config, False, [str(made)])
    with pytest.raises(ConfigError, match=r"without --configfile reports the default config \(quick, config/config"
                                          r"\.yaml\), whose outputs \(.*f\.png and 0 more\) do not exist: add "
                                          r"--configfile CONFIG"):
        check_report_outputs(config, False, [str(made), str(absent)])
    with pytest.raises(ConfigError, match="run the workflow with the same --configfile first"):
        check_report_outputs(config, True, [str(absent)])
    assert reporting(["x", "--report", "r.html"]) and not reporting(["x", "--report-after-run"])
