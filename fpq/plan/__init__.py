"""A workflow config's view of a grid (layer `plan`): the tables each grid feeds
(`table_specs`), the runs and measurements a config plans (`grid`; Snakemake's `--config` values typed and
blamed by `overrides`), the run index (`index`),
the cost in GPU-hours (`budget`, and `budget_breakdown` by architecture and stage), where a
campaign stands (`progress` of one run folder, `status` of the grid), the checks the Snakefile makes
when it is read (`checks`), the order its jobs start in (`order`), the GPU slot pool (`gpu_slots`)
with CUDA MPS for shared GPUs (`mps`), packing a run's results (`archive`), and a study made
of sittings: its blocks and the seeds the next sitting trains (`blocks`), priced in sittings
(`sittings`).

May import `fpq.run` (a run's cell and config) and everything below it; never `report` or
`cli`. Torch-free: the Snakefile and the light commands import it.
"""
