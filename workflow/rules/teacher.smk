# Stage 1: one FP teacher per (dataset, arch, seed); it initializes and teaches every QAT cell.
# A run that diverges is a result: fpq records metrics.json with status "failed" and exits 0,
# so the tables still build (--record-failures). train.log keeps every attempt; job.log the last.


rule train_teacher:
    input:
        data=data_file,
    output:
        metrics=run_file("metrics.json"),
    wildcard_constraints:
        run=id_pattern(TEACHER_IDS),
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
    priority: start_priority("teacher")
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=runtime_minutes,
        mem_mb=16000,
    shell:
        "fpq pretrain --config-json {params.cfg:q} --set runtime.threads={threads} --out {params.out}"
        " --record-failures > {log} 2>&1"
