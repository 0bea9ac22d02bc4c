"""Tabular benchmarks with ground-truth metrics (NAS-Bench-201)."""

from search.benchmarks.nb201 import NB201Table

__all__ = ["NB201Table"]
