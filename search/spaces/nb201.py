"""NAS-Bench-201 cell search space and its weight-sharing network (Dong & Yang, ICLR 2020).

An architecture is the benchmark's own string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``:
one op per edge, edges in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).

The network follows the official macro skeleton (xautodl ``TinyNetwork`` / ``InferCell``): a 3x3
conv stem, three stages of N cells at C, 2C and 4C channels separated by residual reduction
blocks, a BN-ReLU, global average pooling and a linear classifier. The same module class serves
as supernet (every edge holds all candidate ops) and as standalone sub-network (every edge holds
one op), so a sub-network extracted from the supernet is exactly the benchmark's network and
keeps the same parameter names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import torch
from torch import nn

from search.spaces import register_space

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625


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


def is_connected(arch: str) -> bool:
    """Whether the cell output is reachable from its input through non-``none`` edges.

    Disconnected cells are legal benchmark architectures (their cell outputs zeros); they sit at
    the table's minimum accuracy.
    """
    reach = {0}
    for (dst, src), op in zip(EDGES, parse_arch(arch), strict=True):
        if op != "none" and src in reach:
            reach.add(dst)
    return NUM_NODES - 1 in reach


def live_ops(arch: str) -> tuple[str, ...]:
    """The six ops with every edge that is not on an input-to-output path set to ``none``.

    Such an edge computes nothing the output sees, so two archs with the same live ops are the
    same network (the benchmark's isomorphic cells); predictors see through the difference.
    """
    ops = parse_arch(arch)
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


# ----------------------------------------------------------------------------- network


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BN, the official ``nor_conv`` op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """Build one candidate op (stride 1, channels in == out, as inside every NB201 cell)."""
    if name == "none":
        # Contributes nothing; the cell skips it, so no module holds state for it.
        return nn.Identity()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown op {name!r}; valid ops: {list(OPS)}")


class Cell(nn.Module):
    """A NAS-Bench-201 cell: node i sums op_(i<-j)(node j) over j < i; the output is node 3."""

    def __init__(self, channels: int, candidates: Sequence[Sequence[str]]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {
                edge_key(edge): nn.ModuleDict({op: make_op(op, channels) for op in cands})
                for edge, cands in zip(EDGES, candidates, strict=True)
            }
        )

    def forward(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        nodes = [x]
        k = 0
        for dst in range(1, NUM_NODES):
            total = None
            for src in range(dst):
                op = ops[k]
                k += 1
                if op == "none":
                    continue
                out = self.edges[edge_key((dst, src))][op](nodes[src])
                total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The official residual reduction block between stages (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201 network whose edges hold a set of candidate ops each.

    With all ops on every edge this is the weight-sharing supernet: ``set_active(arch)`` picks
    the single path that ``forward`` runs. With one op per edge it is a standalone network.

    Args:
        channels: width C of the first stage (16 in the benchmark).
        cells_per_stage: N, cells per stage (5 in the benchmark).
        num_classes: classifier outputs.
        candidates: per edge, the candidate ops; default all of ``OPS`` on every edge.
    """

    def __init__(
        self,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        candidates: Sequence[Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        if channels < 1 or cells_per_stage < 1 or num_classes < 1:
            raise ValueError(
                f"channels, cells_per_stage and num_classes must be >= 1, got "
                f"{channels}, {cells_per_stage}, {num_classes}"
            )
        candidates = [tuple(OPS)] * len(EDGES) if candidates is None else candidates
        if len(candidates) != len(EDGES):
            raise ValueError(f"need candidates for {len(EDGES)} edges, got {len(candidates)}")
        for cands in candidates:
            if not cands or any(op not in OPS for op in cands):
                raise ValueError(f"bad candidate ops {list(cands)}; valid ops: {list(OPS)}")
        self.candidates: tuple[tuple[str, ...], ...] = tuple(tuple(c) for c in candidates)
        self.channels, self.cells_per_stage, self.num_classes = (
            channels,
            cells_per_stage,
            num_classes,
        )
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c_prev = channels
        for stage, width in enumerate((channels, 2 * channels, 4 * channels)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, width))
            layers.extend(Cell(width, self.candidates) for _ in range(cells_per_stage))
            c_prev = width
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        # Default path: the first candidate of each edge (the only one in a standalone net).
        self._active: tuple[str, ...] = tuple(c[0] for c in self.candidates)

    @property
    def active_arch(self) -> str:
        """Arch string of the path that ``forward`` runs."""
        return arch_str(self._active)

    def set_active(self, arch: str | Sequence[str]) -> None:
        """Activate one path, given as an arch string or a sequence of six ops."""
        ops = parse_arch(arch) if isinstance(arch, str) else tuple(arch)
        for edge, op, cands in zip(EDGES, ops, self.candidates, strict=True):
            if op not in cands:
                raise ValueError(
                    f"op {op!r} on edge {edge[0]}<-{edge[1]} is not in this network's "
                    f"candidates {list(cands)}"
                )
        self._active = ops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, self._active) if isinstance(layer, Cell) else layer(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)

    def extract_subnet(self, arch: str) -> NB201Network:
        """A standalone copy of one path with its shared weights and BN statistics."""
        ops = parse_arch(arch)
        sub = NB201Network(
            self.channels, self.cells_per_stage, self.num_classes, [(op,) for op in ops]
        )
        # Parameter names coincide by construction, so the path's weights copy by name.
        own = self.state_dict()
        sub.load_state_dict({k: own[k] for k in sub.state_dict()}, strict=True)
        return sub.to(next(self.parameters()).device)


# ----------------------------------------------------------------------------- space


class NB201Space:
    """The NAS-Bench-201 cell space: decisions, sampling, integer encoding and networks."""

    name = "nb201"
    ops = OPS
    edges = EDGES
    num_archs = NUM_ARCHS

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10):
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.num_classes = num_classes

    # Decisions -------------------------------------------------------------------------
    @property
    def decisions(self) -> dict[str, tuple[str, ...]]:
        """Decision label -> choices, one per edge (``"1<-0"`` etc.)."""
        return {f"{d}<-{s}": OPS for d, s in EDGES}

    def validate(self, arch: str) -> str:
        """Return ``arch`` if it is a valid arch string; raise a clear ``ValueError`` if not."""
        parse_arch(arch)
        return arch

    def encode(self, arch: str) -> np.ndarray:
        """Integer vector (one op index per edge) of an arch string."""
        return np.array([OPS.index(op) for op in parse_arch(arch)], dtype=np.int64)

    def decode(self, vector: Iterable[int]) -> str:
        """Arch string of an integer vector (one op index per edge)."""
        vec = [int(v) for v in vector]
        if len(vec) != len(EDGES) or any(not 0 <= v < len(OPS) for v in vec):
            raise ValueError(
                f"an NB201 vector has {len(EDGES)} entries in 0..{len(OPS) - 1}, got {vec}"
            )
        return arch_str([OPS[v] for v in vec])

    def features(self, arch: str) -> np.ndarray:
        """Predictor features: the encoding, then the encoding of the live ops (:func:`live_ops`),
        so that a model sees both what is chosen and what the network really computes."""
        live = [OPS.index(op) for op in live_ops(arch)]
        return np.concatenate([self.encode(arch), np.array(live, dtype=np.int64)])

    @property
    def feature_choices(self) -> list[int]:
        """Number of values of each entry of :meth:`features`."""
        return [len(OPS)] * (2 * len(EDGES))

    def sample(self, rng: np.random.Generator, n: int | None = None) -> str | list[str]:
        """Uniformly random architecture(s); ``n=None`` returns one string."""
        vecs = rng.integers(0, len(OPS), size=(1 if n is None else n, len(EDGES)))
        archs = [self.decode(v) for v in vecs]
        return archs[0] if n is None else archs

    def sample_unique(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` distinct architectures drawn uniformly without replacement."""
        if not 0 <= n <= NUM_ARCHS:
            raise ValueError(f"can draw 0..{NUM_ARCHS} distinct NB201 archs, asked for {n}")
        return [self.all_archs[i] for i in rng.choice(NUM_ARCHS, size=n, replace=False)]

    @cached_property
    def all_archs(self) -> list[str]:
        """All 15,625 architectures, in integer-encoding order (not the benchmark's index)."""
        grids = np.stack(np.meshgrid(*[range(len(OPS))] * len(EDGES), indexing="ij"), -1)
        return [self.decode(v) for v in grids.reshape(-1, len(EDGES))]

    # Networks --------------------------------------------------------------------------
    def build_supernet(self) -> NB201Network:
        """Weight-sharing supernet holding every op on every edge."""
        return NB201Network(self.channels, self.cells_per_stage, self.num_classes)

    def build_subnet(self, arch: str) -> NB201Network:
        """Freshly initialised standalone network of one architecture."""
        return NB201Network(
            self.channels,
            self.cells_per_stage,
            self.num_classes,
            [(op,) for op in parse_arch(arch)],
        )


@register_space
def nb201(channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10) -> NB201Space:
    """NAS-Bench-201 (C=16, N=5 in the benchmark; smaller values for CPU experiments)."""
    return NB201Space(channels, cells_per_stage, num_classes)
