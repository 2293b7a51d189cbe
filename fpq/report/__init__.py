"""What a reader sees (layer `report`): results read through the run index (`results`), the
tables (`tables`), the claims with their statistics (`claims`) and the figures (`figures`).

May import `fpq.plan` and everything below it; only `fpq.cli` imports it. Built only from result
files listed by the run index, never from a config grid.
"""
