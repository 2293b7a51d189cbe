# Stage 2: every QAT cell (baselines, FPQ, ablation, p sweep, SAM), from its teacher.
# A run whose teacher failed, or that diverges, ends as a failed result (see teacher.smk).


rule train_qat:
    input:
        data=data_file,
        teacher=lambda wc: os.path.join(os.path.dirname(RUNS[wc.run].config.teacher), "metrics.json"),
    output:
        metrics=run_file("metrics.json"),
    wildcard_constraints:
        run=id_pattern(QAT_IDS),
    params:
        identity=run_identity_json,
        cfg=run_config_json,
        out=lambda wc, output: os.path.dirname(output.metrics),
    conda:
        "../envs/fpq.yaml"
    log:
        run_file("job.log"),
    benchmark:
        run_file("train.benchmark.tsv")
    priority: start_priority("qat")
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=runtime_minutes,
        mem_mb=16000,
    shell:
        "fpq qat --config-json {params.cfg:q} --set runtime.threads={threads} --out {params.out}"
        " --record-failures > {log} 2>&1"
