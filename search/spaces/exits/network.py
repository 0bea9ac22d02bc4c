"""Multi-exit networks: exit heads branched off the blocks of a frozen backbone (HADAS IV-B).

Any backbone that can be run block by block plugs in (:class:`BlockBackbone`): NAS-Bench-201's
:class:`~search.spaces.nb201.NB201Network` does; an elastic MobileNetV3 would expose its MBConv
layers the same way. Early exit really stops: :meth:`MultiExitNetwork.early_exit` runs the
blocks on the samples that have not left yet only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class BlockBackbone(Protocol):
    """A network run as ``forward_head(block_{B-1}(... block_0(forward_stem(x))))``."""

    num_classes: int

    @property
    def num_blocks(self) -> int: ...

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_block(self, index: int, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor) -> torch.Tensor: ...


class ExitHead(nn.Sequential):
    """One exit: conv + BN + ReLU, global average pooling, linear (HADAS IV-B1).

    The conv is 3x3 (padding 1) on feature maps larger than 2x2 and 1x1 on maps of 2x2 or
    smaller, where a 3x3 window would mostly see padding.

    Args:
        in_channels: channels of the block output the exit reads.
        spatial: smaller side of that feature map.
        num_classes: classifier outputs.
        width: conv output channels (default: ``in_channels``).
    """

    def __init__(
        self, in_channels: int, spatial: int, num_classes: int, width: int | None = None
    ) -> None:
        width = in_channels if width is None else width
        kernel = 3 if spatial > 2 else 1
        super().__init__(
            nn.Conv2d(in_channels, width, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(width, num_classes),
        )
        self.kernel_size = kernel


@dataclass
class EarlyExitOutput:
    """What one early-exit forward pass produced, per sample.

    Attributes:
        logits: (n, classes) logits of the exit that answered.
        exit_index: (n,) index into the active exits of the exit that answered;
            ``len(active)`` means the backbone's final classifier.
        blocks_run: (n,) backbone blocks computed for the sample.
        active: the active exit positions (block indices), ascending.
    """

    logits: torch.Tensor
    exit_index: torch.Tensor
    blocks_run: torch.Tensor
    active: tuple[int, ...]


class MultiExitNetwork(nn.Module):
    """A backbone with exit heads at some of its block outputs.

    Args:
        backbone: a :class:`BlockBackbone`.
        positions: block indices an exit branches off (all candidates; which ones a dynamic
            network uses is chosen per call, see ``active``).
        input_size: (H, W) of the input, to size the heads.
        in_channels: input channels.
        head_width: exit conv channels (default: the block's channels).
    """

    def __init__(
        self,
        backbone: nn.Module,
        positions: Sequence[int],
        input_size: Sequence[int] = (32, 32),
        in_channels: int = 3,
        head_width: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, BlockBackbone):
            raise TypeError(
                f"{type(backbone).__name__} is not a BlockBackbone (num_blocks, forward_stem, "
                "forward_block, forward_head)"
            )
        positions = tuple(sorted(int(p) for p in positions))
        if not positions or positions[0] < 0 or positions[-1] >= backbone.num_blocks - 1:
            raise ValueError(
                f"exit positions must lie in 0..{backbone.num_blocks - 2} (the last block feeds "
                f"the final classifier), got {positions}"
            )
        self.backbone = backbone
        self.positions = positions
        self._position_set = frozenset(positions)
        self.num_classes = backbone.num_classes
        shapes = self._block_shapes(tuple(input_size), in_channels)
        self.exits = nn.ModuleDict(
            {
                str(p): ExitHead(shapes[p][0], min(shapes[p][1:]), self.num_classes, head_width)
                for p in positions
            }
        )
        self.input_shape = (in_channels, *input_size)

    @torch.no_grad()
    def _block_shapes(self, size: tuple[int, ...], in_channels: int) -> list[tuple[int, ...]]:
        was_training = self.backbone.training
        self.backbone.eval()
        p = next(self.backbone.parameters(), None)
        h = self.backbone.forward_stem(torch.zeros(1, in_channels, *size, device=p.device))
        shapes = []
        for i in range(self.backbone.num_blocks):
            h = self.backbone.forward_block(i, h)
            shapes.append(tuple(h.shape[1:]))
        self.backbone.train(was_training)
        return shapes

    # Frozen backbone ----------------------------------------------------------------
    def freeze_backbone(self) -> None:
        """No gradients into the backbone and BN statistics kept (it stays in eval mode)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self._frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> MultiExitNetwork:
        super().train(mode)
        if getattr(self, "_frozen", False):
            self.backbone.eval()  # training the exits must not move the backbone's BN stats
        return self

    # Passes ---------------------------------------------------------------------------
    def backbone_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Block outputs at every exit position (in ``positions`` order) and the final logits,
        from one backbone pass."""
        h = self.backbone.forward_stem(x)
        feats = []
        for i in range(self.backbone.num_blocks):
            h = self.backbone.forward_block(i, h)
            if i in self._position_set:
                feats.append(h)
        return feats, self.backbone.forward_head(h)

    def exit_logits(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Logits of every exit from its block output (``positions`` order)."""
        if len(features) != len(self.positions):
            raise ValueError(f"need {len(self.positions)} feature maps, got {len(features)}")
        return [self.exits[str(p)](f) for p, f in zip(self.positions, features, strict=True)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every exit, then the final classifier's (all computed: training, ideal
        policy)."""
        feats, final = self.backbone_features(x)
        return [*self.exit_logits(feats), final]

    @torch.no_grad()
    def early_exit(
        self,
        x: torch.Tensor,
        leave: Callable[[torch.Tensor], torch.Tensor],
        active: Sequence[int] | None = None,
    ) -> EarlyExitOutput:
        """Dynamic inference: each sample leaves at the first active exit where ``leave``
        says so; later blocks run only on the samples still inside.

        Args:
            x: a batch of inputs.
            leave: logits (m, classes) -> bool (m,), whether each sample exits here (e.g.
                :func:`search.spaces.exits.inference.confidence_rule`).
            active: exit positions in use (default: all of ``positions``).
        """
        active = self.positions if active is None else tuple(sorted(int(p) for p in active))
        if not set(active) <= set(self.positions):
            raise ValueError(f"active exits {active} are not among the heads {self.positions}")
        n = x.shape[0]
        logits = x.new_zeros(n, self.num_classes)
        exit_index = torch.full((n,), len(active), dtype=torch.long, device=x.device)
        blocks_run = torch.full((n,), self.backbone.num_blocks, dtype=torch.long, device=x.device)
        inside = torch.arange(n, device=x.device)
        order = {p: k for k, p in enumerate(active)}
        h = self.backbone.forward_stem(x)
        for i in range(self.backbone.num_blocks):
            h = self.backbone.forward_block(i, h)
            if i not in order:
                continue
            z = self.exits[str(i)](h)
            out = leave(z).to(torch.bool)
            if out.any():
                rows = inside[out]
                logits[rows], exit_index[rows], blocks_run[rows] = z[out], order[i], i + 1
                inside, h = inside[~out], h[~out]
            if inside.numel() == 0:
                break
        if inside.numel():
            logits[inside] = self.backbone.forward_head(h)
        return EarlyExitOutput(logits, exit_index, blocks_run, active)
