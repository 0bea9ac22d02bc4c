"""Search tactics of the Intel HW-NAS system (section 4): how validations are spent.

* :class:`FullSearch` (``full.py``): a pymoo algorithm on validation (section 4.4); with
  ``initial`` it is the warm start, seeded from another search's best front
  (:func:`front_archs`, ``warm_start.py``).
* :class:`PredictorSearch` (``predictor.py``): validate a sample, train predictors, search on
  them, validate the predicted front (section 4.4, "full search" with predictors).
* :class:`ConcurrentNAS` (``concurrent.py``): Algorithm 1 (section 4.5), improved as its
  docstring describes; its candidates come from ``candidates.py`` and its batch selection
  (HVI / EHVI, normalisation and reach boxes) from ``selection.py``.
* :class:`PopDB` (``popdb.py``): population density-based space reduction (section 4.6).
"""

from search.tactics.base import INFEASIBLE_PENALTY, AlgorithmBuilder, Tactic
from search.tactics.candidates import (
    UninformedPredictor,
    hamming_neighbours,
    inner_search,
    predicted_matrices,
)
from search.tactics.concurrent import ConcurrentNAS
from search.tactics.full import FullSearch
from search.tactics.popdb import PopDB, ReducedSpace, popdb_space
from search.tactics.predictor import PredictorSearch
from search.tactics.selection import (
    normalisation_box,
    normalised_to_front,
    reach_box,
    select_by_ehvi,
    select_by_hvi,
)
from search.tactics.warm_start import front_archs

__all__ = [
    "INFEASIBLE_PENALTY",
    "AlgorithmBuilder",
    "ConcurrentNAS",
    "FullSearch",
    "PopDB",
    "PredictorSearch",
    "ReducedSpace",
    "Tactic",
    "UninformedPredictor",
    "front_archs",
    "hamming_neighbours",
    "inner_search",
    "normalisation_box",
    "normalised_to_front",
    "popdb_space",
    "predicted_matrices",
    "reach_box",
    "select_by_ehvi",
    "select_by_hvi",
]
