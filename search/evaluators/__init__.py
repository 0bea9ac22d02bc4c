"""Evaluators behind one interface: the Intel system's evaluation manager (section 3).

An evaluator turns an architecture into named metrics. Three kinds exist:

* ``validation``: really measure. :class:`TableEvaluator` looks metrics up in the NAS-Bench-201
  table, or asks a :class:`hardware.base.Device` for the devices it is given;
  :class:`FunctionEvaluator` calls a user's own function.
* ``predictor``: :class:`PredictorEvaluator`, weak predictors (``search.predictors``) trained
  on validated evaluations.
* ``proxy``: :class:`ProxyEvaluator`, parameter and FLOP counts of the built network.

:class:`SupernetEvaluator` validates accuracy from a trained supernet's shared weights
(:func:`supernet_evaluator` pairs it with the table or a device for the hardware metrics).

Every evaluator has a ``name`` (``<kind>:<what>``, recorded with each result) and
``settings(targets)``: everything that makes two evaluations of one architecture the same, which
the archive uses to never validate an architecture twice.
"""

from search.evaluators.base import Evaluator, Metrics, Target
from search.evaluators.combined import CombinedEvaluator
from search.evaluators.function import FunctionEvaluator
from search.evaluators.predictor import PredictorEvaluator
from search.evaluators.proxy import ProxyEvaluator
from search.evaluators.subnet import SubnetEvaluator
from search.evaluators.supernet import SupernetEvaluator, supernet_evaluator
from search.evaluators.table import TableEvaluator

__all__ = [
    "CombinedEvaluator",
    "Evaluator",
    "FunctionEvaluator",
    "Metrics",
    "PredictorEvaluator",
    "ProxyEvaluator",
    "SubnetEvaluator",
    "SupernetEvaluator",
    "TableEvaluator",
    "Target",
    "supernet_evaluator",
]
