# Stage 3: final Hessian trace / top eigenvalue (Fig. 5 endpoint) and the output-variance probe (Fig. 1).
# Each value is its own param: a job reruns when a value it uses changes, not when keys are
# reordered or another method joins `methods`. A failed run's measurement is recorded as failed.
H, V = config["hessian"], config["variance"]


rule measure_hessian:
    input:
        metrics=run_file("metrics.json"),
    output:
        run_file("hessian.json"),
    wildcard_constraints:
        run=id_pattern(HESSIAN_IDS),
    params:
        model=lambda wc, input: os.path.join(os.path.dirname(input.metrics), "model.pt"),
        probes=H["final_probes"],
        batches=H["final_batches"],
        batch_size=H["batch_size"],
        seed=H["seed"],
        eigen_iters=H["eigen_iters"],
        device=config["runtime"]["device"],
    conda:
        "../envs/fpq.yaml"
    log:
        run_file("hessian.log"),
    priority: start_priority("measure")
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=60,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} fpq hessian --model {params.model} --out {output}"
        " --probes {params.probes} --batches {params.batches} --batch-size {params.batch_size}"
        " --seed {params.seed} --eigen-iters {params.eigen_iters} --device {params.device} > {log} 2>&1"


rule probe_variance:
    input:
        metrics=run_file("metrics.json"),
    output:
        run_file("variance.json"),
    wildcard_constraints:
        run=id_pattern(VARIANCE_IDS),
    params:
        model=lambda wc, input: os.path.join(os.path.dirname(input.metrics), "model.pt"),
        sigma=V["sigma"],
        images=V["images"],
        samples=V["samples"],
        device=config["runtime"]["device"],
    conda:
        "../envs/fpq.yaml"
    log:
        run_file("variance.log"),
    priority: start_priority("measure")
    threads: max(1, config["runtime"]["threads"])
    resources:
        gpu=1,
        runtime=20,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} fpq variance --model {params.model} --out {output}"
        " --sigma {params.sigma} --images {params.images} --samples {params.samples}"
        " --device {params.device} > {log} 2>&1"
