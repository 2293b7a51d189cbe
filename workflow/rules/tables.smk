# Stage 4: the run index, the paper's Tables 1-5, the claims summary and the figures.
# Tables and figures read only the runs of the index (<results>/index.json), never the folder.
from fpq.plan.table_specs import TABLES as TABLE_SPECS

TABLES = config["tables"]
FIGURES = config["figures"]
INDEX = f"{RESULTS}/index.json"
TABLE_FILES = [f"{TABLES}/{spec.name}.{ext}" for spec in TABLE_SPECS for ext in ("md", "tex")] + [
    f"{TABLES}/claims.md"
]
FIGURE_FILES = [f"{FIGURES}/{name}.{ext}" for name in ("fig5_hessian", "fig1_variance", "training_curves")
                for ext in ("png", "pdf")]
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
    output:
        [report(f, category="Tables") for f in TABLE_FILES],
    params:
        results=lambda wc, input: os.path.dirname(input.index),
        out=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../envs/fpq.yaml"
    log:
        f"{TABLES}/tables.log",
    shell:
        "fpq tables --index {input.index} --results {params.results} --out {params.out}"
        " --reference {input.reference} > {log} 2>&1"


rule plot_figures:
    input:
        index=INDEX,
        results=RESULT_FILES,
    output:
        [report(f, category="Figures") for f in FIGURE_FILES],
    params:
        results=lambda wc, input: os.path.dirname(input.index),
        out=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../envs/fpq.yaml"
    log:
        f"{FIGURES}/figures.log",
    shell:
        "fpq figures --index {input.index} --results {params.results} --out {params.out} > {log} 2>&1"
