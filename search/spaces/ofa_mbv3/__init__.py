"""OFA MobileNetV3: elastic layers (``layers.py``), the space (``space.py``) and the weight-sharing
supernet with its standalone sub-networks (``network.py``)."""

from collections.abc import Sequence

from search.spaces import register_space
from search.spaces.ofa_mbv3.layers import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicSE,
    SqueezeExcite,
    make_divisible,
)
from search.spaces.ofa_mbv3.network import (
    DynamicMBConv,
    MBConv,
    OFAMobileNetV3,
    OFAMobileNetV3Subnet,
    Stage,
)
from search.spaces.ofa_mbv3.space import OFAMobileNetV3Space


@register_space
def ofa_mbv3(
    width_mult: float = 0.5,
    stages: int | None = None,
    widths: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    acts: Sequence[str] | None = None,
    se: Sequence[bool] | None = None,
    first_stride: int = 1,
    resolutions: Sequence[int] = (24, 28, 32),
    depths: Sequence[int] = (2, 3, 4),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expand_ratios: Sequence[float] = (3, 4, 6),
    num_classes: int = 10,
    dropout: float = 0.0,
) -> OFAMobileNetV3Space:
    """OFA MobileNetV3 with CIFAR-10 defaults (width 0.5, stride-1 first conv, 24-32 px); see
    :class:`OFAMobileNetV3Space` for every argument."""
    return OFAMobileNetV3Space(
        width_mult=width_mult,
        stages=stages,
        widths=widths,
        strides=strides,
        acts=acts,
        se=se,
        first_stride=first_stride,
        resolutions=resolutions,
        depths=depths,
        kernel_sizes=kernel_sizes,
        expand_ratios=expand_ratios,
        num_classes=num_classes,
        dropout=dropout,
    )


__all__ = [
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicDepthwiseConv2d",
    "DynamicMBConv",
    "DynamicSE",
    "MBConv",
    "OFAMobileNetV3",
    "OFAMobileNetV3Space",
    "OFAMobileNetV3Subnet",
    "SqueezeExcite",
    "Stage",
    "make_divisible",
    "ofa_mbv3",
]
