"""fpq: a reproducibility suite for FPQ (SFP + CSD on LSQ QAT), Pang & Cai, arXiv 2503.11159."""
__version__ = "0.1.0"
