"""The OFA MobileNetV3 supernet (elastic depth, kernel, expand ratio, resolution) and its
standalone sub-networks.

Layout (OFA's ``OFAMobileNetV3`` with configurable strides): a 3x3 conv (``first_conv``,
stride ``first_stride``, h_swish), a fixed MBConv with expand 1 (``first_block``), the elastic
stages (``stages.<i>.blocks.<j>``: expand 1x1 -> BN -> act, depthwise kxk -> BN -> act,
optional SE, project 1x1 -> BN, residual when stride 1 and in == out), then ``final_expand``
(1x1, BN, h_swish), global average pooling, ``feature_mix`` (1x1, no BN, h_swish), dropout and
the linear ``classifier``. Both networks resize their input to the architecture's resolution
(bilinear, only when it differs), so a device that feeds the largest resolution measures the
architecture at its own.

The extracted sub-network (:class:`OFAMobileNetV3Subnet`) holds plain ``nn.Conv2d`` /
``nn.BatchNorm2d`` / ``nn.Linear`` layers under the same names as the supernet's kept modules,
with the supernet's weights (transformed kernels baked in) and BN statistics cloned.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search.spaces.base import Architecture
from search.spaces.ofa_mbv3.layers import (
    ConvBNAct,
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicSE,
    SqueezeExcite,
    conv_bn_act,
    make_activation,
    make_divisible,
    se_channels,
)
from search.spaces.ofa_mbv3.space import OFAMobileNetV3Space

BN_BUFFERS = ("running_mean", "running_var")


def mid_channels(c_in: int, expand: float) -> int:
    """Middle (expanded) channels of a block: ``make_divisible(round(c_in * expand), 8)``."""
    return make_divisible(round(c_in * expand))


def init_weights(net: nn.Module) -> None:
    """OFA's ``he_fout`` initialisation: conv N(0, 2 / (k^2 out)), BN (1, 0), linear
    U(+-1/sqrt(in)) with zero bias."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MBConv(nn.Module):
    """Static inverted-residual block (MobileNetV2/V3): expand, depthwise, SE, project."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        mid: int,
        act: str,
        use_se: bool,
        expand: bool = True,
    ) -> None:
        super().__init__()
        if not expand and mid != c_in:
            raise ValueError(f"a block without expand conv has mid == in, got {mid} != {c_in}")
        self.expand = conv_bn_act(c_in, mid, 1, act=act) if expand else None
        self.depthwise = conv_bn_act(mid, mid, kernel_size, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid) if use_se else None
        self.project = conv_bn_act(mid, c_out, 1)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.expand is None else self.expand(x)
        h = self.depthwise(h)
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return h + x if self.residual else h


class DynamicMBConv(nn.Module):
    """Elastic inverted-residual block: kernel size and expand ratio set per forward path.

    ``active_ks`` / ``active_mid`` pick the path (set by the supernet's ``set_active``); the
    weights are those of the largest block, sliced to the leading ``active_mid`` channels.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        act: str,
        use_se: bool,
        kernel_sizes: tuple[int, ...],
        expand_ratios: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride, self.act, self.use_se = c_in, c_out, stride, act, use_se
        self.mids = {e: mid_channels(c_in, e) for e in expand_ratios}
        max_mid = max(self.mids.values())
        self.max_mid = max_mid
        self.expand = ConvBNAct(
            DynamicConv2d(c_in, max_mid), DynamicBatchNorm2d(max_mid), make_activation(act)
        )
        self.depthwise = ConvBNAct(
            DynamicDepthwiseConv2d(max_mid, kernel_sizes, stride),
            DynamicBatchNorm2d(max_mid),
            make_activation(act),
        )
        self.se = DynamicSE(max_mid) if use_se else None
        self.project = ConvBNAct(DynamicConv2d(max_mid, c_out), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out
        self.active_ks = max(kernel_sizes)
        self.active_mid = max_mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e, d, p = self.expand, self.depthwise, self.project
        h = e.act(e.bn(e.conv(x, self.active_mid)))
        h = d.act(d.bn(d.conv(h, self.active_ks)))
        if self.se is not None:
            h = self.se(h)
        h = p.bn(p.conv(h))
        return h + x if self.residual else h

    @torch.no_grad()
    def extract(self, kernel_size: int, mid: int) -> MBConv:
        """A static block of this path with cloned weights (transformed kernel baked in)."""
        block = MBConv(self.c_in, self.c_out, kernel_size, self.stride, mid, self.act, self.use_se)
        e, d = self.expand, self.depthwise
        block.expand.conv.weight.copy_(e.conv.weight[:mid])
        _copy_bn(block.expand.bn, e.bn, mid)
        block.depthwise.conv.weight.copy_(d.conv.active_filter(mid, kernel_size))
        _copy_bn(block.depthwise.bn, d.bn, mid)
        if self.se is not None:
            r = se_channels(mid)
            block.se.reduce.weight.copy_(self.se.reduce.weight[:r, :mid])
            block.se.reduce.bias.copy_(self.se.reduce.bias[:r])
            block.se.expand.weight.copy_(self.se.expand.weight[:mid, :r])
            block.se.expand.bias.copy_(self.se.expand.bias[:mid])
        block.project.conv.weight.copy_(self.project.conv.weight[:, :mid])
        _copy_bn(block.project.bn, self.project.bn, self.c_out)
        return block

    @torch.no_grad()
    def reorganize(self) -> None:
        """Sort the middle channels by importance, most important first (OFA's
        ``re_organize_middle_weights``): L1 norm of the project conv's input weights; the SE
        squeeze channels likewise by the L1 norm of the SE expand conv's input weights.

        The largest-expand path computes the same function afterwards (a permutation of its
        channels); smaller expand ratios then use the most important channels, which changes
        them on purpose.
        """
        importance = self.project.conv.weight.abs().sum(dim=(0, 2, 3))
        idx = torch.argsort(importance, descending=True)
        _permute(self.project.conv.weight, idx, 1)
        _permute(self.expand.conv.weight, idx, 0)
        _permute_bn(self.expand.bn, idx)
        _permute(self.depthwise.conv.weight, idx, 0)
        _permute_bn(self.depthwise.bn, idx)
        if self.se is not None:
            se = self.se
            _permute(se.reduce.weight, idx, 1)
            _permute(se.expand.weight, idx, 0)
            _permute(se.expand.bias, idx, 0)
            sq = torch.argsort(se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            _permute(se.expand.weight, sq, 1)
            _permute(se.reduce.weight, sq, 0)
            _permute(se.reduce.bias, sq, 0)


def _permute(t: torch.Tensor, idx: torch.Tensor, dim: int) -> None:
    t.copy_(t.index_select(dim, idx))


def _permute_bn(bn: nn.BatchNorm2d, idx: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        _permute(t, idx, 0)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, c: int) -> None:
    dst.weight.copy_(src.weight[:c])
    dst.bias.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.eps, dst.momentum = src.eps, src.momentum


class Stage(nn.Module):
    """Blocks of one stage; ``forward`` runs the first ``depth`` of them."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.depth = len(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            if i >= self.depth:
                break
            x = block(x)
        return x


class _MobileNetV3(nn.Module):
    """The fixed parts and the forward pass shared by the supernet and its sub-networks."""

    def _build_fixed(self, space: OFAMobileNetV3Space) -> None:
        self.space = space
        self.num_classes = space.num_classes
        c0 = space.first_width
        self.first_conv = conv_bn_act(3, c0, 3, space.first_stride, act="h_swish")
        self.first_block = MBConv(c0, c0, 3, 1, c0, "relu", use_se=False, expand=False)

    def _build_head(self, space: OFAMobileNetV3Space) -> None:
        self.final_expand = conv_bn_act(
            space.stage_widths[-1], space.final_expand_width, 1, act="h_swish"
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = conv_bn_act(
            space.final_expand_width, space.last_channel, 1, bn=False, act="h_swish"
        )
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.last_channel, space.num_classes)

    @property
    def resolution(self) -> int:
        return self._resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self._resolution
        if x.shape[-2] != r or x.shape[-1] != r:
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        x = self.first_block(self.first_conv(x))
        for stage in self.stages:
            x = stage(x)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


class OFAMobileNetV3Subnet(_MobileNetV3):
    """A standalone sub-network of the OFA MobileNetV3 space (plain torch layers).

    Built freshly initialised by ``space.build_subnet(arch)`` or holding the supernet's weights
    from :meth:`OFAMobileNetV3.extract_subnet`; module names are the supernet's.

    Args:
        space: the space (its configuration gives the widths, strides, ...).
        arch: the (parsed) architecture.
        init: initialise the weights (False when the caller copies weights in).
    """

    def __init__(self, space: OFAMobileNetV3Space, arch: Mapping[str, Any], init: bool = True):
        super().__init__()
        arch = space.parse(arch)
        self.arch: Architecture = arch
        self._resolution = arch["resolution"]
        self._build_fixed(space)
        stages, c_in = [], space.first_width
        for i, (depth_label, labels) in enumerate(space.stage_labels):
            blocks = []
            for j, (ks, ex) in enumerate(labels[: arch[depth_label]]):
                stride = space.strides[i] if j == 0 else 1
                c_out = space.stage_widths[i]
                mid = mid_channels(c_in, arch[ex])
                blocks.append(
                    MBConv(c_in, c_out, arch[ks], stride, mid, space.acts[i], space.se[i])
                )
                c_in = c_out
            stages.append(Stage(blocks))
        self.stages = nn.ModuleList(stages)
        self._build_head(space)
        if init:
            init_weights(self)


class OFAMobileNetV3(_MobileNetV3):
    """OFA MobileNetV3 weight-sharing supernet (implements ``search.spaces.base.Supernet``).

    ``set_active(arch)`` picks the path ``forward`` runs: it only sets a few integers per block
    (no weight copies), so switching costs microseconds. ``extract_subnet(arch)`` returns the
    standalone network of a path; ``bn_state`` / ``load_bn_state`` read and write the active
    path's BN statistics (the Dynamic-OFA switch: activate, then load the member's BN stats).

    Args:
        space: the space, or None to build one from ``space_kwargs``
            (:class:`~search.spaces.ofa_mbv3.space.OFAMobileNetV3Space`'s arguments).
    """

    def __init__(self, space: OFAMobileNetV3Space | None = None, **space_kwargs: Any) -> None:
        super().__init__()
        if space is None:
            space = OFAMobileNetV3Space(**space_kwargs)
        elif space_kwargs:
            raise ValueError(f"give a space or its keyword arguments, not both: {space_kwargs}")
        self._build_fixed(space)
        stages, c_in = [], space.first_width
        for i in range(space.stages):
            blocks = []
            for j in range(space.max_depth):
                blocks.append(
                    DynamicMBConv(
                        c_in,
                        space.stage_widths[i],
                        space.strides[i] if j == 0 else 1,
                        space.acts[i],
                        space.se[i],
                        space.kernel_sizes,
                        space.expand_ratios,
                    )
                )
                c_in = space.stage_widths[i]
            stages.append(Stage(blocks))
        self.stages = nn.ModuleList(stages)
        self._build_head(space)
        init_weights(self)
        self._bn_owner: dict[str, tuple[nn.Module, str]] | None = None
        self.set_active(space.max_arch())

    # Supernet protocol -----------------------------------------------------------------
    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        return self.space.decisions

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A random architecture (:meth:`OFAMobileNetV3Space.sample`)."""
        return self.space.sample(rng)

    def max_arch(self) -> Architecture:
        return self.space.max_arch()

    def min_arch(self) -> Architecture:
        return self.space.min_arch()

    @property
    def active_arch(self) -> Architecture:
        """The (normalised) architecture ``forward`` runs, as a new dict."""
        return dict(self._arch)

    def set_active(self, arch: str | Mapping[str, Any]) -> None:
        """Activate one path (a dict or its JSON string); a ``ValueError`` names a bad value."""
        arch = self.space.parse(arch)
        for stage, (depth_label, labels) in zip(self.stages, self.space.stage_labels, strict=True):
            stage.depth = arch[depth_label]
            for block, (ks, ex) in zip(stage.blocks, labels, strict=True):
                block.active_ks = arch[ks]
                block.active_mid = block.mids[arch[ex]]
        self._resolution = arch["resolution"]
        self._arch = arch

    def extract_subnet(self, arch: str | Mapping[str, Any] | None = None) -> OFAMobileNetV3Subnet:
        """Standalone copy of one path (default: the active one) with cloned weights and BN
        statistics; its eval-mode outputs equal the supernet's with that path active."""
        arch = self._arch if arch is None else self.space.parse(arch)
        sub = OFAMobileNetV3Subnet(self.space, arch, init=False)
        for name in ("first_conv", "first_block", "final_expand", "feature_mix", "classifier"):
            setattr(sub, name, copy.deepcopy(getattr(self, name)))
        stages = []
        for stage, (depth_label, labels) in zip(self.stages, self.space.stage_labels, strict=True):
            blocks = [
                block.extract(arch[ks], block.mids[arch[ex]])
                for block, (ks, ex) in zip(stage.blocks, labels[: arch[depth_label]], strict=False)
            ]
            stages.append(Stage(blocks))
        sub.stages = nn.ModuleList(stages)
        ref = self.classifier.weight
        return sub.to(device=ref.device, dtype=ref.dtype).train(self.training)

    # BN statistics ---------------------------------------------------------------------
    def _active_bns(self) -> list[tuple[str, nn.BatchNorm2d, int]]:
        """(state_dict prefix, BN module, active channels) of every BN on the active path."""
        out = [
            ("first_conv.bn", self.first_conv.bn, self.first_conv.bn.num_features),
            *(
                (f"first_block.{n}.bn", m.bn, m.bn.num_features)
                for n, m in (
                    ("depthwise", self.first_block.depthwise),
                    ("project", self.first_block.project),
                )
            ),
        ]
        for i, stage in enumerate(self.stages):
            for j in range(stage.depth):
                b = stage.blocks[j]
                p = f"stages.{i}.blocks.{j}."
                out.append((p + "expand.bn", b.expand.bn, b.active_mid))
                out.append((p + "depthwise.bn", b.depthwise.bn, b.active_mid))
                out.append((p + "project.bn", b.project.bn, b.c_out))
        out.append(("final_expand.bn", self.final_expand.bn, self.final_expand.bn.num_features))
        return out

    def bn_state(self) -> dict[str, torch.Tensor]:
        """The active path's BN ``running_mean`` / ``running_var``, sliced to its channels and
        cloned, keyed by state_dict name (``stages.0.blocks.1.expand.bn.running_mean``)."""
        state = {}
        for prefix, bn, c in self._active_bns():
            for buf in BN_BUFFERS:
                state[f"{prefix}.{buf}"] = getattr(bn, buf)[:c].detach().clone()
        return state

    @torch.no_grad()
    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy BN statistics (the :meth:`bn_state` form, or the running_mean / running_var
        entries of an extracted sub-network's state_dict) into the leading slices of the
        supernet's BN buffers.

        Raises:
            ValueError: for a key that is not a BN running statistic of this supernet, or a
                tensor longer than its buffer.
        """
        if self._bn_owner is None:
            # Modules keep their identity under .to(); their buffers do not, so look those up
            # through the owning module at every load.
            self._bn_owner = {
                f"{name}.{buf}": (m, buf)
                for name, m in self.named_modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for buf in BN_BUFFERS
            }
        owners = self._bn_owner
        for key, value in state.items():
            if key not in owners:
                raise ValueError(
                    f"{key!r} is not a BN running statistic of this supernet (keys look like "
                    f"'stages.0.blocks.1.expand.bn.running_mean')"
                )
            m, buf = owners[key]
            target = getattr(m, buf)
            n = value.shape[0] if value.dim() == 1 else -1
            if n < 0 or n > target.shape[0]:
                raise ValueError(
                    f"{key}: got shape {tuple(value.shape)}, need a vector of at most "
                    f"{target.shape[0]} channels"
                )
            target[:n].copy_(value)

    # Training support ------------------------------------------------------------------
    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort every elastic block's middle channels by importance (OFA's
        ``re_organize_middle_weights``, called when the expand-ratio phase begins).

        The function of every path with the largest expand ratio is unchanged; smaller expand
        ratios then keep the most important channels. Optimizer state of the permuted
        parameters is not permuted (OFA does the same: start the phase with a fresh optimizer).
        """
        for stage in self.stages:
            for block in stage.blocks:
                block.reorganize()
