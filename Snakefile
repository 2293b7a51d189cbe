# fpq: reproduce Pang & Cai (arXiv 2503.11159) Tables 1-5, Fig. 1 and Fig. 5.
#   snakemake --cores all                                   # quick run (config/config.yaml)
#   snakemake --cores all --configfile config/paper.yaml --resources gpu=4
#   snakemake --profile workflow/profiles/slurm --configfile config/paper.yaml
import sys
from pathlib import Path

from snakemake.utils import min_version

from fpq.plan.checks import check_report_outputs, one_line_errors, reporting
from fpq.plan.grid import prepare_workflow_config

min_version("9.0")


# The default config only when none is given: Snakemake would otherwise deep-merge a
# --configfile into it, and e.g. a grid missing from the given file would be inherited.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# A config is named by its `name:` key, else after its file (results/<name>, tables/<name>,
# figures/<name> by default; the default config names itself `quick`), its `--config key=value`
# overrides typed as YAML types them, then validated against workflow/schemas/config.schema.yaml
# (a bad key stops here with one `fpq: error:` line naming the --configfile, or the --config, and
# the key). Every `snakemake` run here also reads profiles/default/config.yaml.
CONFIG_FILES = [str(f) for f in workflow.overwrite_configfiles or ["config/config.yaml"]]
config.setdefault("name", Path(CONFIG_FILES[-1]).stem)
SOURCE = f"workflow config {' + '.join(CONFIG_FILES)}"
with one_line_errors():
    prepare_workflow_config(config, source=SOURCE, overrides=dict(workflow.config_settings.config))


# The report's front page: what the suite is, which config made the report, where to start reading.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/qat.smk"
include: "workflow/rules/hessian.smk"
include: "workflow/rules/tables.smk"


# Light jobs run where Snakemake runs (on SLURM: the submit host, which also has the internet
# that fetch_data needs); every training, Hessian and variance job asks for one GPU.
localrules:
    fetch_data,
    index_runs,
    build_tables,
    plot_figures,


# `snakemake --report` of a config that has not run: say what to add, before Snakemake's missing-file error.
if reporting(sys.argv):
    with one_line_errors():
        check_report_outputs(config, bool(workflow.overwrite_configfiles), TABLE_PAGES + FIGURE_IMAGES)


rule all:
    default_target: True
    input:
        TABLE_PAGES,
        TABLE_FILES,
        FIGURE_IMAGES,
        FIGURE_FILES,
