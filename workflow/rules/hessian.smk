# Stage 3: final Hessian trace / top eigenvalue (Fig. 5 endpoint) and the output-variance probe (Fig. 1).


rule measure_hessian:
    input:
        model=run_file("model.pt"),
    output:
        run_file("hessian.json"),
    wildcard_constraints:
        run=id_pattern(HESSIAN_IDS),
    params:
        h=config["hessian"],
        device=config["runtime"]["device"],
    conda:
        "../envs/fpq.yaml"
    log:
        run_file("hessian.log"),
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=60,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} fpq hessian --model {input.model} --out {output}"
        " --probes {params.h[final_probes]} --batches {params.h[final_batches]}"
        " --batch-size {params.h[batch_size]} --seed {params.h[seed]}"
        " --eigen-iters {params.h[eigen_iters]} --device {params.device} > {log} 2>&1"


rule probe_variance:
    input:
        model=run_file("model.pt"),
    output:
        run_file("variance.json"),
    wildcard_constraints:
        run=id_pattern(VARIANCE_IDS),
    params:
        v=config["variance"],
        device=config["runtime"]["device"],
    conda:
        "../envs/fpq.yaml"
    log:
        run_file("variance.log"),
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=20,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} fpq variance --model {input.model} --out {output}"
        " --sigma {params.v[sigma]} --images {params.v[images]} --samples {params.v[samples]}"
        " --device {params.device} > {log} 2>&1"
