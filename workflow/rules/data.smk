# Stage 0: CIFAR from torchvision, downloaded once per data root and converted to <root>/<dataset>.npz.
# Datasets with `source: npz` read their file directly; it is an input of every run that uses it.


rule fetch_data:
    output:
        "{root}/{dataset}.npz",
    wildcard_constraints:
        dataset="cifar10|cifar100",
        root=id_pattern(DOWNLOAD_ROOTS),
    conda:
        "../envs/fpq.yaml"
    log:
        "{root}/{dataset}.fetch.log",
    shell:
        "fpq fetch-data --dataset {wildcards.dataset} --root {wildcards.root} > {log} 2>&1"
