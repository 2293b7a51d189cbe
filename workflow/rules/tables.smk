# Stage 4: the paper's Tables 1-5, the claims summary and the figures, from the run folders only.
TABLES = config["tables"]
FIGURES = config["figures"]
TABLE_NAMES = ["table1_sam", "table2_ablation", "table3_psweep", "table4_cifar10", "table5_cifar100"]
TABLE_FILES = [f"{TABLES}/{name}.{ext}" for name in TABLE_NAMES for ext in ("md", "tex")] + [
    f"{TABLES}/claims.md"
]
FIGURE_FILES = [f"{FIGURES}/{name}.{ext}" for name in ("fig5_hessian", "fig1_variance") for ext in ("png", "pdf")]


rule build_tables:
    input:
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS),
        hessian=expand(f"{RESULTS}/runs/{{run}}/hessian.json", run=HESSIAN_IDS),
    output:
        [report(f, category="Tables") for f in TABLE_FILES],
    params:
        expected=",".join(RUNS),
        reference=config["reference"],
        p=config["quant"]["sfp_p"],
        results=lambda wc, input: results_dir(input.metrics[0]),
        out=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../envs/fpq.yaml"
    log:
        f"{TABLES}/tables.log",
    shell:
        "fpq tables --results {params.results} --out {params.out} --reference {params.reference}"
        " --expected {params.expected:q} --p {params.p} > {log} 2>&1"


rule plot_figures:
    input:
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=QAT_IDS),
        variance=expand(f"{RESULTS}/runs/{{run}}/variance.json", run=VARIANCE_IDS),
    output:
        [report(f, category="Figures") for f in FIGURE_FILES],
    params:
        results=lambda wc, input: results_dir(input.metrics[0]),
        out=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../envs/fpq.yaml"
    log:
        f"{FIGURES}/figures.log",
    shell:
        "fpq figures --results {params.results} --out {params.out} > {log} 2>&1"
