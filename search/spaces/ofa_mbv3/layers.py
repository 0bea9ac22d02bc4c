"""Elastic (dynamic) layers of the OFA MobileNetV3 supernet, and their static counterparts.

Written on plain torch following the design of Once-for-All (Cai et al., ICLR 2020; the
authors' ``ofa`` package, MIT) rather than importing that package: its ``OFAMobileNetV3``
hard-codes the ImageNet strides and a stride-2 first conv (a 1x1 feature map at 32 px on
CIFAR-10), and its training utilities are bound to CUDA and horovod. What is kept from it:

- channel slicing: an active sub-network uses the *leading* channels of every elastic weight
  (so :meth:`~search.spaces.ofa_mbv3.network.OFAMobileNetV3.reorganize_channels` sorts the
  most important channels to the front);
- elastic kernel by centre crop plus OFA's learned kernel transformation matrices (7->5: a
  25x25 matrix, 5->3: 9x9, identity-initialised, applied in a chain 7->5->3; paper sec. 3.2,
  "elastic kernel size");
- BatchNorm over the leading channels whose running statistics live in the leading slice of
  the full buffers (training updates that slice in place, momentum ``None`` = cumulative
  average, so BN recalibration works on the supernet directly);
- squeeze-and-excitation with reduction 4 on the active middle channels (divisible by 8).

Every dynamic layer subclasses the torch layer it generalises, so parameter and buffer names
(``weight``, ``bias``, ``running_mean``...) are the ones a standalone ``nn.Conv2d`` /
``nn.BatchNorm2d`` has: the extracted sub-network shares the supernet's state_dict names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: tuple[str, ...] = ("relu", "h_swish")
SE_REDUCTION = 4
CHANNEL_DIVISOR = 8


def make_divisible(
    value: float, divisor: int = CHANNEL_DIVISOR, min_value: int | None = None
) -> int:
    """Round ``value`` to a multiple of ``divisor``, never below 90% of it (MobileNet / OFA)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def make_activation(name: str | None) -> nn.Module | None:
    """``relu`` -> ``nn.ReLU``, ``h_swish`` -> ``nn.Hardswish`` (OFA's Hswish), None -> None."""
    if name is None:
        return None
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    raise ValueError(f"unknown activation {name!r}; valid: {list(ACTIVATIONS)}")


def se_channels(mid: int) -> int:
    """Squeeze width of an SE module on ``mid`` channels (OFA: ``make_divisible(mid // 4, 8)``)."""
    return make_divisible(mid // SE_REDUCTION)


# Static layers (the fixed parts of the supernet and every layer of an extracted sub-network).
class ConvBNAct(nn.Module):
    """Conv, optional BN, optional activation, as named children ``conv``, ``bn``, ``act``."""

    def __init__(
        self, conv: nn.Module, bn: nn.Module | None = None, act: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    bn: bool = True,
    act: str | None = None,
) -> ConvBNAct:
    """A static ``ConvBNAct`` with 'same' padding and a bias-free conv."""
    conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
    return ConvBNAct(conv, nn.BatchNorm2d(c_out) if bn else None, make_activation(act))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (MobileNetV3): mean -> reduce 1x1 -> ReLU -> expand 1x1 ->
    hard sigmoid -> scale."""

    def __init__(self, channels: int, squeeze: int | None = None) -> None:
        super().__init__()
        squeeze = se_channels(channels) if squeeze is None else squeeze
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        y = self.gate(self.expand(self.relu(self.reduce(y))))
        return x * y


# Dynamic layers --------------------------------------------------------------------------
class DynamicConv2d(nn.Conv2d):
    """A pointwise (or any ungrouped) conv that runs on the leading channels of its weight.

    ``forward(x, out_channels)`` uses ``weight[:out_channels, :x.size(1)]``; ``out_channels``
    None means all of them.
    """

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__(max_in, max_out, kernel_size, stride, kernel_size // 2, bias=False)

    def active_weight(self, in_channels: int, out_channels: int | None = None) -> torch.Tensor:
        out = self.out_channels if out_channels is None else out_channels
        w = self.weight
        if out != w.shape[0] or in_channels != w.shape[1]:
            w = w[:out, :in_channels]
        return w

    def forward(self, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
        w = self.active_weight(x.shape[1], out_channels)
        return F.conv2d(x, w, None, self.stride, self.padding)


class DynamicDepthwiseConv2d(nn.Conv2d):
    """Depthwise conv with elastic channels and an elastic kernel (OFA sec. 3.2).

    A kernel of size k < max is the centre k x k of the next larger kernel times a learned
    (k^2 x k^2) transformation matrix, applied in a chain from the largest kernel down
    (7 -> 5 -> 3): ``transform_7to5`` (25 x 25) and ``transform_5to3`` (9 x 9), both
    identity-initialised, so an untrained transform is a plain centre crop.
    """

    def __init__(self, max_channels: int, kernel_sizes: Sequence[int], stride: int = 1) -> None:
        ks = sorted(kernel_sizes)
        super().__init__(
            max_channels,
            max_channels,
            ks[-1],
            stride,
            ks[-1] // 2,
            groups=max_channels,
            bias=False,
        )
        self.kernel_sizes = tuple(ks)
        for src, dst in zip(ks[:0:-1], ks[-2::-1], strict=True):
            self.register_parameter(
                self.transform_name(src, dst), nn.Parameter(torch.eye(dst * dst))
            )

    @staticmethod
    def transform_name(src: int, dst: int) -> str:
        return f"transform_{src}to{dst}"

    def active_filter(self, channels: int, kernel_size: int) -> torch.Tensor:
        """The (channels, 1, k, k) kernel the active sub-network uses (transforms applied)."""
        w = self.weight if channels == self.out_channels else self.weight[:channels]
        ks = self.kernel_sizes
        if kernel_size == ks[-1]:
            return w
        if kernel_size not in ks:
            raise ValueError(f"kernel size {kernel_size} not in this layer's {list(ks)}")
        i = len(ks) - 1
        while ks[i] > kernel_size:
            src, dst = ks[i], ks[i - 1]
            start = (src - dst) // 2
            crop = w[:, :, start : start + dst, start : start + dst].reshape(channels, dst * dst)
            w = F.linear(crop, getattr(self, self.transform_name(src, dst)))
            w = w.view(channels, 1, dst, dst)
            i -= 1
        return w

    def forward(self, x: torch.Tensor, kernel_size: int | None = None) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel_sizes[-1] if kernel_size is None else kernel_size
        return F.conv2d(x, self.active_filter(c, k), None, self.stride, k // 2, 1, c)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the leading ``x.size(1)`` channels of its parameters and buffers.

    In training mode the running statistics of that leading slice are updated in place (the
    rest is untouched), with torch's rules: ``momentum=None`` is the cumulative average over
    ``num_batches_tracked`` batches (what BN recalibration uses).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        if c > self.num_features:
            raise ValueError(f"{c} channels fed to a DynamicBatchNorm2d of {self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else factor
        use_batch = self.training or not self.track_running_stats
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:c] if track else None,
            self.running_var[:c] if track else None,
            self.weight[:c],
            self.bias[:c],
            use_batch,
            factor,
            self.eps,
        )


class DynamicSE(SqueezeExcite):
    """Squeeze-and-excitation on the active (leading) channels: squeeze width
    ``make_divisible(active // 4, 8)``, the leading rows/columns of both 1x1 convs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.expand.out_channels:
            return super().forward(x)
        r = se_channels(c)
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, self.reduce.weight[:r, :c], self.reduce.bias[:r]))
        y = F.hardsigmoid(F.conv2d(y, self.expand.weight[:c, :r], self.expand.bias[:c]))
        return x * y
