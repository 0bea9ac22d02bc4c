"""Early-exit networks: exit placement (``space.py``), multi-exit network (``network.py``) and exit
policies with measured early-exit inference (``inference.py``)."""

from search.spaces.exits.inference import (
    CONFIDENCES,
    calibrate_threshold,
    confidence_rule,
    ideal_exit_indices,
    run_early_exit,
)
from search.spaces.exits.network import BlockBackbone, EarlyExitOutput, ExitHead, MultiExitNetwork
from search.spaces.exits.space import ExitSpace, candidate_positions

__all__ = [
    "CONFIDENCES",
    "BlockBackbone",
    "EarlyExitOutput",
    "ExitHead",
    "ExitSpace",
    "MultiExitNetwork",
    "calibrate_threshold",
    "candidate_positions",
    "confidence_rule",
    "ideal_exit_indices",
    "run_early_exit",
]
