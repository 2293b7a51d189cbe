"""Checks the Snakefile makes when it is read, so a mistake stops Snakemake with one line naming
what to change, instead of a page of Snakemake's own exception about a missing file."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from fpq.errors import ConfigError, DataError
from fpq.plan.grid import Plan


@contextmanager
def one_line_errors():
    """A ConfigError (or a DataError: a damaged block) raised while Snakemake reads the workflow ends
    it with the one `fpq: error: ...` line and exit status 2, as the fpq command does: Snakemake would
    print it as `ConfigError in file ...` followed by the traceback lines of the Snakefile and fpq."""
    try:
        yield
    except (ConfigError, DataError) as err:
        print(f"fpq: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def check_data_files(plan: Plan, source: str = "") -> None:
    """Every .npz the plan's runs read exists, else one ConfigError naming the config key that set it
    (`data.<dataset>.path`). Snakemake would otherwise stop on the missing input of every run, in a
    page of MissingInputException naming no key. Downloads (source: torchvision) are made by fetch_data."""
    missing = {run.config.data.dataset: run.config.data.path for run in plan.runs.values()
               if run.config.data.source == "npz" and not Path(run.config.data.path).is_file()}
    if missing:
        where = f"{source}: " if source else ""
        raise ConfigError(where + "; ".join(
            f"data.{dataset}.path: {path} does not exist (looked for {Path(path).resolve()}); point it at a "
            f"CIFAR .npz or use source: torchvision" for dataset, path in sorted(missing.items())))


def reporting(argv: list[str]) -> bool:
    """Whether this Snakemake was started to write its HTML report (`--report [FILE]`).

    >>> reporting(["snakemake", "--report", "r.html"]), reporting(["snakemake", "--report=r.html"]), reporting(["-n"])
    (True, True, False)
    """
    return any(a == "--report" or a.startswith("--report=") for a in argv)


def check_report_outputs(config: dict, configfile_given: bool, outputs: list[str]) -> None:
    """`snakemake --report` of a config whose tables or figures are not there: one ConfigError that
    says what to add (the run's own --configfile) or to run first, not Snakemake's missing-file error."""
    missing = [path for path in outputs if not Path(path).exists()]
    if not missing:
        return
    name = config["name"]
    if not configfile_given:
        raise ConfigError(f"snakemake --report without --configfile reports the default config ({name}, "
                          f"config/config.yaml), whose outputs ({missing[0]} and {len(missing) - 1} more) do not "
                          f"exist: add --configfile CONFIG, the config of the run to report (e.g. --configfile "
                          f"config/ci.yaml after `snakemake --cores 2 --configfile config/ci.yaml`)")
    raise ConfigError(f"snakemake --report: the outputs of config {name} ({missing[0]} and {len(missing) - 1} more) "
                      f"do not exist yet: run the workflow with the same --configfile first")
