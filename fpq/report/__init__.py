"""What a reader sees (layer `report`): results read through the run index (`results`), or a
study's blocks pooled (`pooling`), the
tables (`tables`), the claims (`claims`) with their statistics (`stats`: paired or Welch tests,
intervals, detectable effects), the paper's own numbers they stand beside (`paper`), the figures
(`figures`, `curves`, sharing `plots`), the numbers as people read them (`formats`), the
provenance stamp every output carries (`stamp`), the flags on a row that is no plain result
(`flags`: chance level, a teacher's seeds far apart) and the HTML pages the Snakemake report shows
(`html_page`).

May import `fpq.plan` and everything below it; only `fpq.cli` imports it. Built only from result
files listed by the run index, never from a config grid.
"""
