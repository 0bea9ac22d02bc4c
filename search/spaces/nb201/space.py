"""NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020): decisions, arch strings, sampling.

An architecture is a mapping edge -> op, ``{"1<-0": "nor_conv_3x3", "2<-0": ..., "3<-2": ...}``,
edges in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). Its serialized form (the
archive key) is the benchmark's own string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``;
every function here takes either form (or the six ops in edge order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from search.spaces.base import Architecture, DecisionSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625
DECISIONS: tuple[str, ...] = tuple(f"{d}<-{s}" for d, s in EDGES)  # decision label per edge


def edge_key(edge: tuple[int, int]) -> str:
    """Module name of an edge (``nn.ModuleDict`` keys cannot hold the arrow notation)."""
    return f"edge_{edge[0]}_{edge[1]}"


def parse_arch(arch: str) -> tuple[str, ...]:
    """Parse an official arch string into its six ops in edge order, validating everything.

    Raises:
        ValueError: naming the malformed part and what is valid.
    """
    if not isinstance(arch, str):
        raise ValueError(
            f"a NAS-Bench-201 architecture must be a string, got {type(arch).__name__}"
        )
    nodes = arch.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise ValueError(
            f"malformed NAS-Bench-201 arch string {arch!r}: expected {NUM_NODES - 1} nodes "
            f"separated by '+', like '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
            f"|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'"
        )
    ops: list[str] = []
    for node, text in enumerate(nodes, start=1):
        if not (text.startswith("|") and text.endswith("|")):
            raise ValueError(f"malformed node {node} {text!r} in {arch!r}: must be '|op~j|...|'")
        items = text[1:-1].split("|")
        if len(items) != node:
            raise ValueError(f"node {node} of {arch!r} must have {node} inputs, got {len(items)}")
        for expected_src, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(expected_src):
                raise ValueError(
                    f"malformed edge {item!r} in {arch!r}: expected '<op>~{expected_src}'"
                )
            if op not in OPS:
                raise ValueError(f"unknown op {op!r} in {arch!r}; valid ops: {list(OPS)}")
            ops.append(op)
    return tuple(ops)


def arch_str(ops: Sequence[str]) -> str:
    """Official arch string of six ops given in edge order."""
    if len(ops) != len(EDGES):
        raise ValueError(f"need {len(EDGES)} ops (one per edge), got {len(ops)}: {list(ops)}")
    for op in ops:
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; valid ops: {list(OPS)}")
    nodes, k = [], 0
    for node in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(node)) + "|")
        k += node
    return "+".join(nodes)


def ops_of(arch: str | Mapping[str, str] | Sequence[str]) -> tuple[str, ...]:
    """The six ops in edge order of an architecture in any form, validated.

    Accepts the benchmark string, a mapping edge label -> op, or the ops in edge order.

    Raises:
        ValueError: naming the malformed part and what is valid.
    """
    if isinstance(arch, str):
        return parse_arch(arch)
    if isinstance(arch, Mapping):
        labels = set(arch)
        if labels != set(DECISIONS):
            raise ValueError(
                f"a NAS-Bench-201 architecture maps the edges {list(DECISIONS)} to ops; "
                f"{dict(arch)!r} has missing {sorted(set(DECISIONS) - labels)} and unknown "
                f"{sorted(labels - set(DECISIONS))}"
            )
        ops = tuple(arch[label] for label in DECISIONS)
    elif isinstance(arch, Sequence):
        ops = tuple(arch)
    else:
        raise ValueError(
            "a NAS-Bench-201 architecture is an arch string, a mapping edge -> op or six ops, "
            f"got {type(arch).__name__}"
        )
    arch_str(ops)  # validates count and op names
    return ops


def is_connected(arch: str | Mapping[str, str] | Sequence[str]) -> bool:
    """Whether the cell output is reachable from its input through non-``none`` edges.

    Disconnected cells are legal benchmark architectures (their cell outputs zeros); they sit at
    the table's minimum accuracy.
    """
    reach = {0}
    for (dst, src), op in zip(EDGES, ops_of(arch), strict=True):
        if op != "none" and src in reach:
            reach.add(dst)
    return NUM_NODES - 1 in reach


def live_ops(arch: str | Mapping[str, str] | Sequence[str]) -> tuple[str, ...]:
    """The six ops with every edge that is not on an input-to-output path set to ``none``.

    Such an edge computes nothing the output sees, so two archs with the same live ops are the
    same network (the benchmark's isomorphic cells); predictors see through the difference.
    """
    ops = ops_of(arch)
    forward, backward = {0}, {NUM_NODES - 1}
    for (dst, src), op in zip(EDGES, ops, strict=True):
        if op != "none" and src in forward:
            forward.add(dst)
    for (dst, src), op in reversed(list(zip(EDGES, ops, strict=True))):
        if op != "none" and dst in backward:
            backward.add(src)
    return tuple(
        op if src in forward and dst in backward else "none"
        for (dst, src), op in zip(EDGES, ops, strict=True)
    )


class NB201Space(DecisionSpace):
    """The NAS-Bench-201 cell space: decisions, sampling, integer encoding and networks.

    Architectures are mappings edge label -> op; the serialized form is the benchmark string.
    Every method takes an architecture in any form :func:`ops_of` accepts.
    """

    name = "nb201"
    ops = OPS
    edges = EDGES
    num_archs = NUM_ARCHS

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10):
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.num_classes = num_classes

    # Decisions and forms ---------------------------------------------------------------
    @property
    def decisions(self) -> dict[str, tuple[str, ...]]:
        """Decision label -> choices, one per edge (``"1<-0"`` etc.)."""
        return dict.fromkeys(DECISIONS, OPS)

    def parse(self, arch: str | Mapping[str, str] | Sequence[str]) -> Architecture:
        """The validated mapping edge label -> op of an architecture in any form."""
        return dict(zip(DECISIONS, ops_of(arch), strict=True))

    def serialize(self, arch: str | Mapping[str, str] | Sequence[str]) -> str:
        """The benchmark's arch string (the archive key)."""
        return arch_str(ops_of(arch))

    def validate(self, arch: str | Mapping[str, str]) -> str:
        """The arch string of a valid architecture; a clear ``ValueError`` if it is not."""
        return self.serialize(arch)

    def encode(self, arch: str | Mapping[str, str] | Sequence[str]) -> np.ndarray:
        """Integer vector (one op index per edge)."""
        return np.array([OPS.index(op) for op in ops_of(arch)], dtype=np.int64)

    def decode(self, vector: Iterable[int]) -> Architecture:
        """The architecture of an integer vector (one op index per edge)."""
        vec = [int(v) for v in vector]
        if len(vec) != len(EDGES) or any(not 0 <= v < len(OPS) for v in vec):
            raise ValueError(
                f"an NB201 vector has {len(EDGES)} entries in 0..{len(OPS) - 1}, got {vec}"
            )
        return {label: OPS[v] for label, v in zip(DECISIONS, vec, strict=True)}

    def features(self, arch: str | Mapping[str, str]) -> np.ndarray:
        """Predictor features: the encoding, then the encoding of the live ops (:func:`live_ops`),
        so that a model sees both what is chosen and what the network really computes."""
        live = [OPS.index(op) for op in live_ops(arch)]
        return np.concatenate([self.encode(arch), np.array(live, dtype=np.int64)])

    @property
    def feature_choices(self) -> list[int]:
        """Number of values of each entry of :meth:`features`."""
        return [len(OPS)] * (2 * len(EDGES))

    # Sampling --------------------------------------------------------------------------
    def sample(
        self, rng: np.random.Generator, n: int | None = None
    ) -> Architecture | list[Architecture]:
        """Uniformly random architecture(s); ``n=None`` returns one."""
        vecs = rng.integers(0, len(OPS), size=(1 if n is None else n, len(EDGES)))
        archs = [self.decode(v) for v in vecs]
        return archs[0] if n is None else archs

    def sample_unique(self, rng: np.random.Generator, n: int) -> list[Architecture]:
        """``n`` distinct architectures drawn uniformly without replacement."""
        if not 0 <= n <= NUM_ARCHS:
            raise ValueError(f"can draw 0..{NUM_ARCHS} distinct NB201 archs, asked for {n}")
        return [self.parse(self.all_archs[i]) for i in rng.choice(NUM_ARCHS, size=n, replace=False)]

    @cached_property
    def all_archs(self) -> list[str]:
        """Arch strings of all 15,625 architectures, in integer-encoding order (not the
        benchmark's index)."""
        grids = np.stack(np.meshgrid(*[range(len(OPS))] * len(EDGES), indexing="ij"), -1)
        return [arch_str([OPS[v] for v in vec]) for vec in grids.reshape(-1, len(EDGES))]

    # Networks --------------------------------------------------------------------------
    def build_supernet(self) -> Any:
        """Weight-sharing supernet holding every op on every edge."""
        from search.spaces.nb201.network import NB201Network  # the network imports this module

        return NB201Network(self.channels, self.cells_per_stage, self.num_classes)

    def build_subnet(self, arch: str | Mapping[str, str] | Sequence[str]) -> Any:
        """Freshly initialised standalone network of one architecture."""
        from search.spaces.nb201.network import NB201Network

        return NB201Network(
            self.channels, self.cells_per_stage, self.num_classes, [(op,) for op in ops_of(arch)]
        )
