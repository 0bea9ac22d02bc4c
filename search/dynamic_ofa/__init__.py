"""Dynamic-OFA (Lou et al. 2021): a Pareto family of sub-networks per processor from one supernet.

:mod:`~search.dynamic_ofa.alg1` is the paper's accuracy-constrained random search (Alg. 1),
:mod:`~search.dynamic_ofa.family` the per-processor search (Alg. 1 parents, NSGA-II
refinement, re-measured levels), :mod:`~search.dynamic_ofa.levels` the level rule,
the artifact (``family.json`` + BN statistics as
safetensors) that ``hardware.runtime`` loads, :mod:`~search.dynamic_ofa.report` the summary
and plot, :mod:`~search.dynamic_ofa.replay` the trace-replay CLI of the runtime manager. Entry
points: ``python search.py experiment=ofa_mbv3_family evaluator.ckpt_path=...`` and
``python -m search.dynamic_ofa.replay``.
"""

from search.dynamic_ofa.alg1 import Alg1Result, SearchExhausted, random_search
from search.dynamic_ofa.levels import front_indices, select_levels

__all__ = ["Alg1Result", "SearchExhausted", "front_indices", "random_search", "select_levels"]
