"""OFA MobileNetV3: elastic layers (``layers.py``), the space (``space.py``) and the weight-sharing
supernet with its standalone sub-networks (``network.py``)."""

from typing import Any

from search.spaces import register_space
from search.spaces.ofa_mbv3.layers import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicSE,
    SqueezeExcite,
    clear_active_cache,
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
def ofa_mbv3(**kwargs: Any) -> OFAMobileNetV3Space:
    """OFA MobileNetV3 with CIFAR-10 defaults (width 0.5, stride-1 first conv, 24-32 px).

    The keyword arguments, their defaults and their checks are :class:`OFAMobileNetV3Space`'s
    (one set of defaults); an unknown one is a TypeError naming it.
    """
    return OFAMobileNetV3Space(**kwargs)


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
    "clear_active_cache",
    "make_divisible",
    "ofa_mbv3",
]
