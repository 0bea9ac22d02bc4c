"""NAS-Bench-201: the cell space (``space.py``) and its weight-sharing network (``network.py``)."""

from search.spaces import register_space
from search.spaces.nb201.network import Cell, NB201Network, ResNetBasicBlock, make_op
from search.spaces.nb201.space import (
    DECISIONS,
    EDGES,
    NUM_ARCHS,
    NUM_NODES,
    OPS,
    NB201Space,
    arch_str,
    edge_key,
    is_connected,
    live_ops,
    ops_of,
    parse_arch,
)


@register_space
def nb201(channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10) -> NB201Space:
    """NAS-Bench-201 (C=16, N=5 in the benchmark; smaller values for CPU experiments)."""
    return NB201Space(channels, cells_per_stage, num_classes)


__all__ = [
    "DECISIONS",
    "EDGES",
    "NUM_ARCHS",
    "NUM_NODES",
    "OPS",
    "Cell",
    "NB201Network",
    "NB201Space",
    "ResNetBasicBlock",
    "arch_str",
    "edge_key",
    "is_connected",
    "live_ops",
    "make_op",
    "nb201",
    "ops_of",
    "parse_arch",
]
