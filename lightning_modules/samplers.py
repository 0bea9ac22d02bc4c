"""Path samplers for single-path supernet training: FairNAS strict fairness and uniform SPOS.

Samplers work on any supernet's decisions: they take the candidate choices of each decision, in
decision order, and return paths as the chosen choice of each decision in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Path = tuple[Any, ...]  # one choice per decision, in decision order


class FairSampler:
    """FairNAS strict fairness (Chu et al., ICCV 2021, Alg. 1; PRP-NAS section 3.2 step 1).

    Each call draws, for every edge independently, a random permutation of its m candidate
    ops; path k takes the k-th op of every permutation. The m paths together use every op of
    every edge exactly once, so each op's weights get exactly one gradient per step.

    Args:
        candidates: per decision, its candidate choices (all decisions need the same count m).
        rng: generator owning all randomness of the sampler.
    """

    def __init__(self, candidates: Sequence[Sequence[Any]], rng: np.random.Generator) -> None:
        sizes = {len(c) for c in candidates}
        if len(sizes) != 1:
            raise ValueError(
                "strict fairness needs the same number of candidate ops on every edge, got "
                f"{[len(c) for c in candidates]}"
            )
        self.candidates = [tuple(c) for c in candidates]
        self.m = sizes.pop()
        self.rng = rng

    def paths(self) -> list[Path]:
        perms = [[cands[i] for i in self.rng.permutation(self.m)] for cands in self.candidates]
        return [tuple(perm[k] for perm in perms) for k in range(self.m)]


class UniformSampler:
    """Single-path one-shot baseline (SPOS, Guo et al., ECCV 2020): one uniform path per step."""

    def __init__(self, candidates: Sequence[Sequence[Any]], rng: np.random.Generator) -> None:
        self.candidates = [tuple(c) for c in candidates]
        self.rng = rng

    def paths(self) -> list[Path]:
        return [tuple(c[self.rng.integers(len(c))] for c in self.candidates)]


SAMPLERS = {"fairnas": FairSampler, "spos": UniformSampler}


def make_sampler(name: str, candidates: Sequence[Sequence[Any]], rng: np.random.Generator):
    """Sampler registered as ``name`` (``fairnas`` or ``spos``)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown path sampler {name!r}; valid: {sorted(SAMPLERS)}")
    return SAMPLERS[name](candidates, rng)
