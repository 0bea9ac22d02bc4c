"""NAS-Bench-201 predictor features: live ops are exactly what the network computes."""

from __future__ import annotations

import numpy as np
import torch

from search.spaces import create_space
from search.spaces.nb201 import arch_str, live_ops


def test_live_ops_compute_the_same_network():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    net = space.build_supernet().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    changed = 0
    for arch in space.sample(rng, 40):
        live = arch_str(live_ops(arch))
        changed += live != arch
        with torch.no_grad():
            net.set_active(arch)
            a = net(x)
            net.set_active(live)
            b = net(x)
        torch.testing.assert_close(a, b)
    assert changed > 10  # the sample did exercise dead edges


def test_live_ops_examples_and_features():
    space = create_space("nb201")
    only_3_0 = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert live_ops(only_3_0) == ("none",) * 3 + ("nor_conv_3x3", "none", "none")
    disconnected = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert live_ops(disconnected) == ("none",) * 6
    f = space.features(only_3_0)
    np.testing.assert_array_equal(f[:6], space.encode(only_3_0))
    assert f.shape == (12,) and space.feature_choices == [5] * 12
