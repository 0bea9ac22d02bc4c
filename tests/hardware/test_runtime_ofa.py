"""The runtime manager on the real OFA MobileNetV3 supernet: a switch restores the exact outputs
of each member's recalibrated extracted sub-network, through the family artifact on disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.runtime import RuntimeManager, load_family, save_family
from search.evaluators.subnet import recalibrate_bn
from search.spaces import create_space

TINY = dict(width_mult=0.25, stages=3, widths=[24, 40, 80], strides=[1, 2, 2],
            acts=["relu", "relu", "h_swish"], se=[False, True, False])  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    space = create_space("ofa_mbv3", **TINY)
    net = space.build_supernet().eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, 32, 32, generator=g) * 1.5 + 0.3 for _ in range(2)]
    archs = [space.min_arch(), *space.sample_unique(np.random.default_rng(0), 2), space.max_arch()]
    x = torch.randn(3, 3, 32, 32, generator=g)
    rows, bn, expected = [], {}, {}
    for i, arch in enumerate(archs):
        aid = space.arch_id(arch)
        sub = net.extract_subnet(arch)
        recalibrate_bn(sub, batches)
        bn[aid] = {k: v for k, v in sub.state_dict().items() if k.endswith(("_mean", "_var"))}
        with torch.no_grad():
            expected[aid] = sub.eval()(x)
        rows.append({"arch": arch, "arch_id": aid, "acc_top1": 50.0 + i, "latency_ms": 1.0 + i})
    root = tmp_path_factory.mktemp("fam")
    save_family(
        root, space={"name": space.name, **space.kwargs}, processors={"cpu_1t": rows}, bn=bn
    )
    return net, load_family(root), x, expected


def test_switch_restores_each_recalibrated_subnet_exactly_also_after_switching_back(setup):
    net, fam, x, expected = setup
    mgr = RuntimeManager(net, fam, "cpu_1t", level=4)
    for level in (4, 1, 3, 2, 4, 1, 2):
        if level != mgr.level:
            mgr.switch(level)
        out, rec = mgr.infer(x)
        assert rec.level == level
        want = expected[fam.levels("cpu_1t")[level - 1].arch_id]
        torch.testing.assert_close(out, want, rtol=0, atol=1e-5)


def test_activation_alone_is_not_enough(setup):
    # without the BN load the shared (untouched) statistics give other outputs
    net, fam, x, expected = setup
    fresh = create_space("ofa_mbv3", **TINY).build_supernet().eval()
    fresh.load_state_dict(net.state_dict())
    lv = fam.levels("cpu_1t")[1]
    RuntimeManager(fresh, fam, "cpu_1t", level=3)  # level 3's stats into the buffers
    fresh.set_active(lv.arch)
    with torch.no_grad():
        stale = fresh(x)
    assert not torch.allclose(stale, expected[lv.arch_id], atol=1e-3)
