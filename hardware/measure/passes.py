"""Interleaved measurement passes over several networks, and how well the passes agree."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
from torch import nn

from hardware.base import Architecture
from hardware.monotonicity import spearman


def measure_in_passes(
    device: Any, models: Sequence[tuple[Architecture, nn.Module]], passes: int, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """Measure named networks in ``passes`` interleaved passes, each over all of them in a fresh
    shuffled order; returns, per network, its ``device.metrics`` of every pass.

    A machine's slow drift (minutes) then spreads over every network instead of shifting a
    block of consecutive ones, and the median over passes ignores one disturbed measurement.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    out: list[list[dict[str, Any]]] = [[] for _ in models]
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        for i in rng.permutation(len(models)):
            name, model = models[i]
            out[i].append(device.metrics(name, model))
    return out


def pass_agreement(latency_ms: np.ndarray) -> dict[str, list[float]]:
    """How well a machine agrees with itself over interleaved passes (:func:`measure_in_passes`)
    of the same networks: the Spearman correlation between every two passes and each pass's
    mean. ``latency_ms`` is (networks, passes). No predictor of these measurements can rank
    the networks better than the passes rank them against each other."""
    A = np.asarray(latency_ms, dtype=float)
    return {
        "srcc_between_passes": [
            round(spearman(A[:, i], A[:, j]), 3) for i, j in combinations(range(A.shape[1]), 2)
        ],
        "pass_means_ms": A.mean(0).round(3).tolist(),
    }
