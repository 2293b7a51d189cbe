"""The paper's method and the baselines' losses (layer `method`): the method pieces (`pieces`:
SFP, CSD, KD, SAM, each declaring its config keys, cost and hooks), the method registry
(`registry`: a quantizer and a tuple of pieces, its label, its paper order), SFP's gates
(`perturb`, Eqs. 9 and 14), CSD and KD (`distill`, Eqs. 15-17), the frozen teacher's forward
(`teacher`) and the training loss (`objective`: CE plus each piece's term).

May import `fpq.quant`, `fpq.models`, `fpq.errors` and `fpq.io`; never a run config (the loss
takes its settings as plain values). `registry` is torch-free: `fpq.config` reads it to validate
a method name.
"""
