"""The inner search space (exit placement x DVFS setting), and string keys for the search."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hardware.dvfs import DvfsSpace
from search.spaces.base import Architecture, DecisionSpace
from search.spaces.exits import ExitSpace


class InnerSpace(DecisionSpace):
    """HADAS's (X, F): one indicator per candidate exit and one level per clock domain.

    An architecture is ``{"exit@4": 0|1, ..., "dvfs.gpu": 1300.0, "dvfs.emc": ..., ...}``.

    name = "hadas_inner"

    Args:
        exits: the exit-placement space.
        dvfs: the platform's frequency space.
        domains: the clock domains searched (default all); the others stay at the reference.
            Domains the DVFS model ignores (the TX2's CPU under a GPU model without host
            share) would be inert decisions, so leave them out.
    """

    def __init__(
        self, exits: ExitSpace, dvfs: DvfsSpace, domains: Sequence[str] | None = None
    ) -> None:
        self.exits, self.dvfs = exits, dvfs
        self.domains = list(dvfs.domains if domains is None else domains)
        for d in self.domains:
            dvfs.levels(d)  # clear error for an unknown domain

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        levels = {f"dvfs.{d}": tuple(float(v) for v in self.dvfs.levels(d)) for d in self.domains}
        return {**self.exits.decisions, **levels}

    def split(self, arch: str | Mapping[str, Any]) -> tuple[tuple[int, ...], dict[str, float]]:
        """(sampled exit positions, DVFS setting) of an architecture."""
        arch = self.parse(arch)
        exits = self.exits.selected({k: arch[k] for k in self.exits.decisions})
        setting = {d: float(arch[f"dvfs.{d}"]) for d in self.domains}
        return exits, setting


class KeyedSpace:
    """A space seen by the search through its serialized keys (``decode`` gives strings)."""

    def __init__(self, space: Any) -> None:
        self.space = space

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        return self.space.decisions

    def encode(self, arch: str | Mapping[str, Any]) -> np.ndarray:
        return self.space.encode(arch)

    def decode(self, vector: Iterable[int]) -> str:
        return self.space.serialize(self.space.decode(vector))

    def serialize(self, arch: str | Mapping[str, Any]) -> str:
        return self.space.serialize(arch)

    def parse(self, arch: str | Mapping[str, Any]) -> Architecture:
        return self.space.parse(arch)

    def sample(self, rng: np.random.Generator, n: int | None = None) -> str | list[str]:
        archs = self.space.sample(rng, n)
        return self.serialize(archs) if n is None else [self.serialize(a) for a in archs]
