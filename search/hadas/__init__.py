"""HADAS (Bouzidi et al., 2023): bi-level search over backbones x early exits x DVFS settings."""

from search.hadas.bilevel import at_equal_accuracy, run_hadas
from search.hadas.cost import ExitCosts, PathCostModel
from search.hadas.inner import INNER_OBJECTIVES, DynamicEvaluation, run_inner
from search.hadas.score import dissimilarity, dynamic_score, inner_objectives
from search.hadas.space import InnerSpace, KeyedSpace

__all__ = [
    "INNER_OBJECTIVES",
    "DynamicEvaluation",
    "ExitCosts",
    "InnerSpace",
    "KeyedSpace",
    "PathCostModel",
    "at_equal_accuracy",
    "dissimilarity",
    "dynamic_score",
    "inner_objectives",
    "run_hadas",
    "run_inner",
]
