"""The NAS-Bench-201 network: weight-sharing supernet and standalone sub-network in one class.

The network follows the official macro skeleton (xautodl ``TinyNetwork`` / ``InferCell``): a 3x3
conv stem, three stages of N cells at C, 2C and 4C channels separated by residual reduction
blocks, a BN-ReLU, global average pooling and a linear classifier. The same module class serves
as supernet (every edge holds all candidate ops) and as standalone sub-network (every edge holds
one op), so a sub-network extracted from the supernet is exactly the benchmark's network and
keeps the same parameter names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from search.spaces.base import Architecture
from search.spaces.nb201.space import DECISIONS, EDGES, NUM_NODES, OPS, arch_str, edge_key, ops_of


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
        self._built: tuple[tuple[str, ...], ...] = self.candidates  # ops that hold modules

    # Supernet protocol (search.spaces.base.Supernet) ----------------------------------
    @property
    def decisions(self) -> dict[str, tuple[str, ...]]:
        """Edge label -> the ops this network holds on that edge."""
        return dict(zip(DECISIONS, self.candidates, strict=True))

    @property
    def active_arch(self) -> str:
        """Arch string of the path that ``forward`` runs."""
        return arch_str(self._active)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random path among the ops this network holds (one draw per edge)."""
        return {label: c[rng.integers(len(c))] for label, c in self.decisions.items()}

    def set_active(self, arch: str | Mapping[str, str] | Sequence[str]) -> None:
        """Activate one path: an arch string, a mapping edge -> op or six ops in edge order."""
        ops = ops_of(arch)
        # any op that holds modules runs, pruned ones included (scoring a held-out arch)
        for edge, op, cands in zip(EDGES, ops, self._built, strict=True):
            if op not in cands:
                raise ValueError(
                    f"op {op!r} on edge {edge[0]}<-{edge[1]} is not in this network's "
                    f"candidates {list(cands)}"
                )
        self._active = ops

    def restrict(self, decisions: Mapping[str, Sequence[str]]) -> None:
        """Keep only these ops per edge (pruning): ``decisions`` and ``sample`` see only them.

        The modules of removed ops stay in place, unused, so parameter names, optimizer state
        and checkpoints keep one shape across a prune; ``restrict`` to a superset (up to the
        ops built at construction) undoes it.
        """
        new = []
        for label, built in zip(DECISIONS, self._built, strict=True):
            keep = tuple(op for op in built if op in decisions.get(label, ()))
            if not keep:
                raise ValueError(
                    f"restricting edge {label} to {list(decisions.get(label, ()))} leaves no op; "
                    f"the network holds {list(built)}"
                )
            new.append(keep)
        self.candidates = tuple(new)
        if any(op not in c for op, c in zip(self._active, self.candidates, strict=True)):
            self._active = tuple(c[0] for c in self.candidates)

    # Block interface (search.spaces.exits.BlockBackbone): multi-exit networks run the
    # backbone block by block and branch exits off block outputs.
    @property
    def num_blocks(self) -> int:
        """Blocks after the stem: the cells and the reduction blocks, in order."""
        return len(self.layers)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    def forward_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Output of block ``index`` (of ``layers``) on the active path."""
        layer = self.layers[index]
        return layer(x, self._active) if isinstance(layer, Cell) else layer(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """The final classifier (BN-ReLU, global pooling, linear) on the last block's output."""
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for i in range(self.num_blocks):
            x = self.forward_block(i, x)
        return self.forward_head(x)

    def extract_subnet(self, arch: str | Mapping[str, str] | Sequence[str]) -> NB201Network:
        """A standalone copy of one path with its shared weights and BN statistics."""
        ops = ops_of(arch)
        sub = NB201Network(
            self.channels, self.cells_per_stage, self.num_classes, [(op,) for op in ops]
        )
        # Parameter names coincide by construction, so the path's weights copy by name.
        own = self.state_dict()
        sub.load_state_dict({k: own[k] for k in sub.state_dict()}, strict=True)
        return sub.to(next(self.parameters()).device)
