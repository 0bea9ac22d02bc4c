"""Latency and energy of each exit path of a multi-exit network at a DVFS setting.

Running to exit i costs the stem, blocks 0..p_i and every sampled exit head up to i (the
earlier heads ran and declined). The static backbone's latency ``L_b`` and energy ``E_b`` at the
reference clocks come from a table or a measurement; a path's share of them is its share of
the static backbone's FLOPs (FLOPs and bytes counted per part by
:func:`hardware.dvfs.workload_profile`), and :class:`hardware.dvfs.DvfsModel` moves it to the
setting with the path's own arithmetic intensity. Conv FLOPs scale as width^2 everywhere, so
the shares of a CPU-width network stand for the table's full-width one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hardware.dvfs import DvfsModel, workload_profile
from search.spaces.exits import MultiExitNetwork


class _Call(nn.Module):
    def __init__(self, owner: nn.Module, fn) -> None:
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@dataclass
class ExitCosts:
    """FLOPs and bytes of one sample through each part of a multi-exit network."""

    stem: tuple[float, float]
    blocks: list[tuple[float, float]]
    heads: dict[int, tuple[float, float]]
    final: tuple[float, float]

    @classmethod
    @torch.no_grad()
    def profile(cls, net: MultiExitNetwork) -> ExitCosts:
        bb = net.backbone
        net.eval()
        x = torch.zeros(1, *net.input_shape)

        def part(fn, inp):
            prof = workload_profile(_Call(net, fn), inp)
            return (prof["flops"], prof["bytes"]), fn(inp)

        stem, h = part(bb.forward_stem, x)
        blocks, heads = [], {}
        for i in range(bb.num_blocks):
            cost, out = part(lambda t, i=i: bb.forward_block(i, t), h)
            blocks.append(cost)
            if i in net.positions:
                heads[i] = part(net.exits[str(i)], out)[0]
            h = out
        final = part(bb.forward_head, h)[0]
        return cls(stem, blocks, heads, final)

    def path(self, stop: int | None, active: Sequence[int]) -> tuple[float, float]:
        """(FLOPs, bytes) of running to the exit at block ``stop`` (None: the final classifier)
        with the exits ``active`` sampled."""
        last = len(self.blocks) - 1 if stop is None else stop
        parts = [self.stem, *self.blocks[: last + 1]]
        parts += [self.heads[p] for p in active if p <= last]
        if stop is None:
            parts.append(self.final)
        return float(sum(p[0] for p in parts)), float(sum(p[1] for p in parts))

    @property
    def static(self) -> tuple[float, float]:
        """(FLOPs, bytes) of the backbone alone."""
        return self.path(None, ())


class PathCostModel:
    """Latency / energy of exit paths at DVFS settings, anchored to the static backbone.

    Args:
        costs: the network's per-part FLOPs and bytes.
        dvfs: the platform's DVFS model.
        static_latency_ms, static_energy_mj: ``L_b`` and ``E_b`` at the model's reference
            setting (for NB201 on the TX2: the table's edgegpu columns).
    """

    def __init__(
        self,
        costs: ExitCosts,
        dvfs: DvfsModel,
        static_latency_ms: float,
        static_energy_mj: float,
    ) -> None:
        self.costs, self.dvfs = costs, dvfs
        self.static_latency_ms, self.static_energy_mj = static_latency_ms, static_energy_mj
        self.static_flops = costs.static[0]

    def at(
        self, stop: int | None, active: Sequence[int], setting: Mapping[str, float]
    ) -> tuple[float, float]:
        """(latency_ms, energy_mj) of one sample leaving at ``stop`` under ``setting``."""
        flops, nbytes = self.costs.path(stop, active)
        share = flops / self.static_flops
        out = self.dvfs.predict(
            share * self.static_latency_ms,
            share * self.static_energy_mj,
            setting,
            flops / max(nbytes, 1.0),
        )
        return float(out["latency_ms"]), float(out["energy_mj"])

    def per_exit(
        self, active: Sequence[int], setting: Mapping[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latency and energy of each sampled exit's path, then the final classifier's."""
        stops = [*active, None]
        vals = np.array([self.at(s, active, setting) for s in stops], dtype=float)
        return vals[:, 0], vals[:, 1]
