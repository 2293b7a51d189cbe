"""One run, top to bottom (layer `run`): its identity (`cell`), the data (`data`), the models it
builds and loads (`build`), the training step, eager or replayed from a CUDA graph (`step`,
`graph`), the training loop (`train`), seeding (`seed`), what a result records
about its making (`provenance`), and the measurement commands on a trained model (`measure`).

May import `fpq.config` and every layer below it (`method`, `measure`, `quant`, `models`,
`errors`, `io`); never `plan`, `report` or `cli`.
"""
