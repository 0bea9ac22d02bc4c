"""Exit placement as a search decision (HADAS section IV-B1): one indicator per candidate block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from search.spaces.base import Architecture, DecisionSpace


def candidate_positions(num_blocks: int, first_block: int = 5) -> tuple[int, ...]:
    """Block indices (0-based) where an exit may branch off: block ``first_block`` (1-based, the
    paper's "from the fifth layer on") up to the one before the last.

    The last block feeds the backbone's own final classifier, so no exit goes there. For
    NAS-Bench-201 with N=5 cells per stage the 17 blocks are 5 cells, a reduction block, 5 cells,
    a reduction block, 5 cells; the candidates are blocks 4..15: the last cell of stage 1, the
    first reduction, stage 2, the second reduction and the first four cells of stage 3 (12
    candidates). Shallower CPU skeletons need a smaller ``first_block``.

    Raises:
        ValueError: when no candidate remains.
    """
    if first_block < 1:
        raise ValueError(f"first_block is 1-based and must be >= 1, got {first_block}")
    positions = tuple(range(first_block - 1, num_blocks - 1))
    if not positions:
        raise ValueError(
            f"a backbone of {num_blocks} blocks has no exit candidate from block {first_block} "
            f"on (the last block is the final classifier's); lower first_block"
        )
    return positions


class ExitSpace(DecisionSpace):
    """Which candidate exits a dynamic network uses: ``{"exit@4": 0 | 1, "exit@5": ..., ...}``.

    Args:
        positions: candidate block indices (see :func:`candidate_positions`).
    """

    name = "exits"

    def __init__(self, positions: Sequence[int]) -> None:
        positions = tuple(int(p) for p in positions)
        if not positions or len(set(positions)) != len(positions) or min(positions) < 0:
            raise ValueError(f"exit positions must be distinct block indices >= 0, got {positions}")
        self.positions = tuple(sorted(positions))

    @staticmethod
    def label(position: int) -> str:
        return f"exit@{position}"

    @property
    def decisions(self) -> dict[str, tuple[int, ...]]:
        return {self.label(p): (0, 1) for p in self.positions}

    def selected(self, arch: str | Mapping[str, Any]) -> tuple[int, ...]:
        """Block indices of the exits an architecture uses, ascending."""
        arch = self.parse(arch)
        return tuple(p for p in self.positions if arch[self.label(p)] == 1)

    def of_positions(self, positions: Sequence[int]) -> Architecture:
        """The architecture that uses exactly the exits at ``positions``."""
        unknown = set(positions) - set(self.positions)
        if unknown:
            raise ValueError(f"positions {sorted(unknown)} are not candidates {self.positions}")
        return {self.label(p): int(p in positions) for p in self.positions}
