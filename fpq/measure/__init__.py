"""The measurements, as math on a model and batches (layer `measure`): the Hessian trace by
Hutchinson and its top eigenvalue by power iteration (`hessian`, Fig. 5), the output variance
under Gaussian input noise (`variance`, Fig. 1).

Imports torch only, nothing of fpq above `fpq.errors`/`fpq.io`: the training loop (its Hessian
trajectory) and the measurement commands of `fpq.run.measure` both call it.
"""
