# fpq: reproduce Pang & Cai (arXiv 2503.11159) Tables 1-5, Fig. 1 and Fig. 5.
#   snakemake --cores all                                   # quick run (config/config.yaml)
#   snakemake --cores all --configfile config/paper.yaml --resources gpu=4
#   snakemake --profile workflow/profiles/slurm --configfile config/paper.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


# The default config only when none is given: Snakemake would otherwise deep-merge a
# --configfile into it, and e.g. a grid missing from the given file would be inherited.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/qat.smk"
include: "workflow/rules/hessian.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        TABLE_FILES,
        FIGURE_FILES,
