# Stage 4: the run index, the paper's Tables 1-5, the claims summary and the figures.
# Tables and figures read only the runs of the index (<results>/index.json), never the folder.
from fpq.plan.table_specs import TABLES as TABLE_SPECS

TABLES = config["tables"]
FIGURES = config["figures"]
INDEX = f"{RESULTS}/index.json"
PAGES = [spec.name for spec in TABLE_SPECS] + ["claims"]  # Markdown pages, each with an HTML twin
FIGURE_NAMES = ("fig5_hessian", "fig1_variance", "training_curves", "loss_composition")


# The .md and .tex files and the PDFs are outputs but not report items: the report shows each
# table and the claims once, as HTML tables with captions, and each figure once, as a PNG.
TABLE_FILES = [f"{TABLES}/{spec.name}.tex" for spec in TABLE_SPECS] + [
    f"{TABLES}/{name}.{ext}" for name in PAGES for ext in ("md", "caption.rst")
]
TABLE_PAGES = [f"{TABLES}/{name}.html" for name in PAGES]
FIGURE_FILES = [f"{FIGURES}/{name}.{ext}" for name in FIGURE_NAMES for ext in ("pdf", "caption.rst")]
FIGURE_IMAGES = [f"{FIGURES}/{name}.png" for name in FIGURE_NAMES]
FIGURE_LABELS = ("Fig. 5 — Hessian trace by epoch", "Fig. 1 — output variance under input noise",
                 "Training curves — test top-1 by epoch", "Loss composition — CE and CSD by epoch and by tap")
# The report lists the tables this config has a grid for (config/ci.yaml has no CIFAR-100 grid: its
# Table 5 is written, saying so, but not listed), then the claims, each by its label.
REPORTED_PAGES = [(f"{TABLES}/{spec.name}.html", "Tables", spec.report_label)
                  for spec in TABLE_SPECS if spec.fed_by(PLAN.grids)] + [
                  (f"{TABLES}/claims.html", "Claims", "Claims — a verdict on each claim of the paper")]
UNREPORTED_PAGES = [f for f in TABLE_PAGES if f not in {path for path, _, _ in REPORTED_PAGES}]
# The committed blocks of the study, pooled into the tables and figures (their run.json: a new block reruns them).
BLOCK_FILES = [str(b.path / "run.json") for b in read_blocks(blocks_folder(config))]
POOL = f"--blocks {blocks_folder(config)}" if BLOCK_FILES else ""
RESULT_FILES = (
    expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS)
    + expand(f"{RESULTS}/runs/{{run}}/hessian.json", run=HESSIAN_IDS)
    + expand(f"{RESULTS}/runs/{{run}}/variance.json", run=VARIANCE_IDS)
)


rule index_runs:
    output:
        INDEX,
    params:
        config=config_json(),
        runs=sorted(RUNS),  # this sitting's runs: a block committed since changes them (fpq.plan.blocks)
    conda:
        "../envs/fpq.yaml"
    log:
        f"{RESULTS}/index.log",
    shell:
        "fpq index --config-json {params.config:q} --out {output} > {log} 2>&1"


rule build_tables:
    input:
        index=INDEX,
        results=RESULT_FILES,
        reference=config["reference"],
        blocks=BLOCK_FILES,
    output:
        [in_report(*page) for page in REPORTED_PAGES],
        UNREPORTED_PAGES,
        TABLE_FILES,
    params:
        results=lambda wc, input: os.path.dirname(input.index),
        out=lambda wc, output: os.path.dirname(output[0]),
        pool=POOL,
    conda:
        "../envs/fpq.yaml"
    log:
        f"{TABLES}/tables.log",
    shell:
        "fpq tables --index {input.index} --results {params.results} --out {params.out}"
        " --reference {input.reference} {params.pool} > {log} 2>&1"


rule plot_figures:
    input:
        index=INDEX,
        results=RESULT_FILES,
        blocks=BLOCK_FILES,
    output:
        [in_report(f, "Figures", label) for f, label in zip(FIGURE_IMAGES, FIGURE_LABELS)],
        FIGURE_FILES,
    params:
        results=lambda wc, input: os.path.dirname(input.index),
        out=lambda wc, output: os.path.dirname(output[0]),
        pool=POOL,
    conda:
        "../envs/fpq.yaml"
    log:
        f"{FIGURES}/figures.log",
    shell:
        "fpq figures --index {input.index} --results {params.results} --out {params.out} {params.pool} > {log} 2>&1"
