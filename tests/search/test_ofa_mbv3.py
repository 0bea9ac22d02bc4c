"""OFA MobileNetV3 space: forms and errors, supernet == extracted sub-network, elastic kernels,
BN-statistics switching, channel reorganisation, evaluators, LUT and measured devices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from hardware.lut import build_lut, trace_ops
from hardware.measure import CPUDevice
from search.evaluators.subnet import SubnetEvaluator, accuracy, recalibrate_bn
from search.spaces import Supernet, create_space, list_spaces
from search.spaces.ofa_mbv3 import (
    DynamicDepthwiseConv2d,
    OFAMobileNetV3,
    OFAMobileNetV3Space,
    OFAMobileNetV3Subnet,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
TINY = dict(width_mult=0.25)  # the smallest widths (8 channels where MobileNetV3 has 16)
FAST = dict(warmup=1, min_repeats=3, max_repeats=6, round_size=3, energy=False, max_seconds=2.0)


@pytest.fixture(scope="module")
def space() -> OFAMobileNetV3Space:
    return create_space("ofa_mbv3", **TINY)


def _batches(n: int, size: int = 4, res: int = 32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, 3, res, res, generator=g) for _ in range(n)]


def _perturb_transforms(net: nn.Module, seed: int = 0) -> None:
    """Non-identity kernel transformation matrices (as training makes them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, DynamicDepthwiseConv2d):
                for name, p in m.named_parameters():
                    if name.startswith("transform_"):
                        p.add_(0.3 * torch.randn(p.shape, generator=g))


def _archs(space: OFAMobileNetV3Space, n: int, seed: int = 0) -> list[dict]:
    return [
        space.max_arch(),
        space.min_arch(),
        *space.sample_unique(np.random.default_rng(seed), n),
    ]


# Space: forms, errors, normalisation -------------------------------------------------------
def test_registered_and_hydra_config_instantiates():
    assert "ofa_mbv3" in list_spaces()
    default = create_space("ofa_mbv3")
    assert isinstance(default, OFAMobileNetV3Space) and default.name == "ofa_mbv3"
    with initialize_config_dir(config_dir=str(CONF / "space"), version_base="1.3"):
        cfg = compose("ofa_mbv3")
    built = instantiate(cfg, num_classes=10)
    assert isinstance(built, OFAMobileNetV3Space)
    assert built.kwargs == default.kwargs  # the config states the defaults
    assert create_space("ofa_mbv3", **default.kwargs).decisions == default.decisions
    # 1 + 5 stages x (depth + 4 blocks x 2) decisions, CIFAR widths at width 0.5
    assert len(default.decisions) == 1 + 5 * 9
    assert default.stage_widths == (16, 24, 40, 56, 80) and default.first_width == 8
    assert default.decisions["resolution"] == (24, 28, 32)
    assert default.decisions["stage3.block2.ks"] == (3, 5, 7)
    assert default.decisions["stage5.depth"] == (2, 3, 4)
    assert default.decisions["stage1.block0.expand"] == (3, 4, 6)


def test_round_trip_of_random_archs(space):
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 200)
    assert len({space.serialize(a) for a in archs}) == 200
    for arch in archs:
        key = space.serialize(arch)
        assert key == json.dumps(arch, sort_keys=True, separators=(",", ":"))
        assert space.parse(key) == arch == space.parse(arch)
        assert space.decode(space.encode(arch)) == arch
        assert space.arch_id(key) == space.arch_id(arch)
        feats = space.features(arch)
        assert len(feats) == len(space.feature_choices)
        assert all(0 <= f < c for f, c in zip(feats, space.feature_choices, strict=True))
    # same seed, same archs; other seed, other archs
    assert space.sample(np.random.default_rng(0), 200) == archs
    assert space.sample(np.random.default_rng(1), 5) != archs[:5]
    unique = space.sample_unique(np.random.default_rng(2), 50)
    assert len({space.serialize(a) for a in unique}) == 50


def _arch_with(space, **changes):
    arch = space.max_arch()
    arch.update({k.replace("__", "."): v for k, v in changes.items()})
    return arch


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage1.block0.ks": 9}, r"invalid choice 9 .*'stage1.block0.ks'.*valid: \[3, 5, 7\]"),
        ({"stage2.depth": 5}, r"invalid choice 5 .*'stage2.depth'.*valid: \[2, 3, 4\]"),
        ({"stage2.depth": 1}, r"invalid choice 1 .*valid: \[2, 3, 4\]"),
        ({"resolution": 64}, r"invalid choice 64 .*'resolution'.*valid: \[24, 28, 32\]"),
        ({"stage1.block0.ks": "3"}, r"invalid choice '3' \(str\).*valid: \[3, 5, 7\]"),
        ({"stage1.block0.expand": 3.0}, r"invalid choice 3.0 \(float\).*valid: \[3, 4, 6\]"),
        ({"stage1.depth": True}, r"invalid choice True \(bool\).*valid: \[2, 3, 4\]"),
        ({"stage9.block0.ks": 3}, r"unknown decisions \['stage9.block0.ks'\]"),
        ({"stage1.block4.ks": 3}, r"unknown decisions \['stage1.block4.ks'\]"),
    ],
)
def test_bad_values_name_the_value_and_the_choices(space, change, message):
    arch = {**space.max_arch(), **change}
    with pytest.raises(ValueError, match=message):
        space.parse(arch)
    with pytest.raises(ValueError, match=message):
        space.serialize(json.dumps(arch))
    net = space.build_supernet()
    before = net.active_arch
    with pytest.raises(ValueError, match=message):
        net.set_active(arch)
    assert net.active_arch == before  # a rejected switch leaves the active path alone


def test_bad_forms_are_clear_errors(space):
    arch = space.max_arch()
    del arch["stage3.block1.expand"]
    with pytest.raises(ValueError, match=r"missing decisions \['stage3.block1.expand'\]"):
        space.parse(arch)
    with pytest.raises(ValueError, match="canonical JSON form"):
        space.parse("{resolution: 32")
    with pytest.raises(ValueError, match="mapping of decision -> choice, got list"):
        space.parse([32, 2, 3])
    with pytest.raises(ValueError, match="one entry per decision"):
        space.decode([0] * 3)
    with pytest.raises(ValueError, match="one entry per decision"):
        space.decode([3] * len(space.decisions))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strides": (1, 2, 2)}, "strides has 3 entries, need one per stage"),
        ({"strides": (1, 3, 2, 1, 2)}, r"stride 1 or 2.*bad: \[3\]"),
        ({"kernel_sizes": (3, 4)}, r"odd ints.*bad: \[4\]"),
        ({"depths": (2, 2)}, "distinct"),
        ({"acts": ("relu",) * 4 + ("gelu",)}, r"bad: \['gelu'\]"),
        ({"first_stride": 4}, "first_stride must be 1 or 2"),
        ({"width_mult": 0}, "width_mult must be a number > 0"),
        ({"stages": 7}, "give widths explicitly"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_space("ofa_mbv3", **kwargs)


def test_inactive_blocks_are_normalised(space):
    arch = space.max_arch()
    arch["stage2.depth"] = 2
    arch["stage2.block2.ks"], arch["stage2.block3.expand"] = 7, 6  # past the depth
    parsed = space.parse(arch)
    assert parsed["stage2.block2.ks"] == 3 and parsed["stage2.block3.expand"] == 3
    assert parsed["stage2.block1.ks"] == 7 and parsed["stage2.block1.expand"] == 6  # active
    other = {**arch, "stage2.block2.ks": 5, "stage2.block3.ks": 5}
    assert space.serialize(other) == space.serialize(arch)
    assert space.arch_id(other) == space.arch_id(arch)
    vec = space.encode(arch)
    labels = list(space.decisions)
    vec2 = vec.copy()
    vec2[labels.index("stage2.block3.ks")] = 2
    assert space.decode(vec2) == space.decode(vec) == parsed
    feats = space.features(arch)
    # inactive blocks are 0 in the features, active ones 1 + choice index
    f = dict(zip(["resolution"] + labels[1:], feats, strict=False))
    assert f["stage2.block2.ks"] == 0 and f["stage2.block1.ks"] == 3
    assert space.min_arch()["stage1.depth"] == 2 and space.max_arch()["stage5.block3.ks"] == 7
    assert all(
        space.sample(np.random.default_rng(0), 100)[i] == space.parse(a)
        for i, a in enumerate(space.sample(np.random.default_rng(0), 100))
    )


# Supernet vs extracted sub-network ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained_like(space) -> OFAMobileNetV3:
    """A supernet whose transform matrices are not the identity and whose BN statistics are
    real (recalibrated on the largest path): an untrained net's outputs are ~1e-9."""
    torch.manual_seed(0)
    net = space.build_supernet()
    _perturb_transforms(net)
    recalibrate_bn(net, _batches(2))
    return net.eval()


def test_extracted_subnet_equals_active_supernet(space, trained_like):
    net = trained_like
    assert isinstance(net, Supernet)
    x = _batches(1, size=3)[0]
    super_keys = net.state_dict()
    for arch in _archs(space, 3):
        for res in space.resolutions:
            arch = {**arch, "resolution": res}
            net.set_active(arch)
            assert net.active_arch == space.parse(arch)
            recalibrate_bn(net, _batches(1, seed=res))  # this path's own statistics
            sub = net.extract_subnet(arch).eval()
            assert isinstance(sub, OFAMobileNetV3Subnet) and sub.resolution == res
            for name, m in sub.named_modules():
                assert (
                    type(m).__module__.startswith("torch.nn")
                    or isinstance(m, OFAMobileNetV3Subnet)
                    or not any(True for _ in m.parameters(recurse=False))
                ), name
            for key, value in sub.state_dict().items():
                assert key in super_keys, key  # same names as the supernet's modules
                full = super_keys[key].shape
                assert len(value.shape) == len(full), key
                assert all(a <= b for a, b in zip(value.shape, full, strict=True)), key
            with torch.no_grad():
                y_super, y_sub = net(x), sub(x)
            assert y_super.abs().max() > 1e-3  # meaningful outputs
            torch.testing.assert_close(y_sub, y_super, rtol=1e-4, atol=1e-5)
            # cloned: changing the sub-network leaves the supernet alone
            with torch.no_grad():
                sub.classifier.weight.add_(1.0)
                sub.stages[0].blocks[0].expand.bn.running_mean.add_(1.0)
                torch.testing.assert_close(net(x), y_super)


def test_stage_depth_and_resolution_shape_the_network(space):
    net = space.build_supernet().eval()
    arch = space.min_arch()
    net.set_active(arch)
    sub = net.extract_subnet()
    assert [len(s.blocks) for s in sub.stages] == [2] * space.stages
    assert sub.stages[2].blocks[0].depthwise.conv.kernel_size == (3, 3)
    ref = {**space.max_arch(), "resolution": 24}
    trace24 = trace_ops(space.build_subnet(ref).eval(), torch.zeros(1, 3, 32, 32))
    trace32 = trace_ops(space.build_subnet(space.max_arch()).eval(), torch.zeros(1, 3, 32, 32))
    assert any("interpolate" in s and "1x3x24x24" in s for s in trace24.signatures)
    assert not any("interpolate" in s for s in trace32.signatures)
    assert len(trace32.signatures) > len(
        trace_ops(space.build_subnet(space.min_arch()).eval(), torch.zeros(1, 3, 32, 32)).signatures
    )


def test_kernel_transform_is_used_and_baked_into_the_subnet(space):
    torch.manual_seed(0)
    net = space.build_supernet()
    arch = {k: (3 if k.endswith(".ks") else v) for k, v in space.max_arch().items()}
    block = net.stages[1].blocks[0]
    dw = block.depthwise.conv
    c = block.max_mid
    crop = dw.weight[:, :, 2:5, 2:5]
    torch.testing.assert_close(dw.active_filter(c, 3), crop)  # identity transforms: a crop
    sub_plain = net.extract_subnet(arch)
    _perturb_transforms(net)
    k3, k5 = dw.active_filter(c, 3), dw.active_filter(c, 5)
    assert not torch.allclose(k3, crop) and not torch.allclose(k5, dw.weight[:, :, 1:6, 1:6])
    # the chain: 3x3 = T(5->3) applied to the centre of the transformed 5x5
    m53 = dw.transform_5to3
    chained = (k5[:, :, 1:4, 1:4].reshape(c, 9) @ m53.T).view(c, 1, 3, 3)
    torch.testing.assert_close(k3, chained)
    sub = net.extract_subnet(arch)
    baked = sub.stages[1].blocks[0].depthwise.conv.weight
    torch.testing.assert_close(baked, k3.detach())
    assert not torch.allclose(baked, sub_plain.stages[1].blocks[0].depthwise.conv.weight)
    # the supernet's output moves with the transform, i.e. forward uses it
    net.eval().set_active(arch)
    recalibrate_bn(net, _batches(1))
    x = _batches(1, size=2, seed=3)[0]
    with torch.no_grad():
        y = net(x)
        dw.transform_5to3.mul_(0.5)
        assert not torch.allclose(net(x), y)
    # gradients reach the transforms through a ks=3 path, and not past the active depth
    net.train()
    arch2 = {**arch, "stage1.depth": 2}
    net.set_active(arch2)
    net.zero_grad()
    net(x).sum().backward()
    assert dw.transform_5to3.grad is not None and dw.transform_7to5.grad.abs().sum() > 0
    assert net.stages[0].blocks[2].expand.conv.weight.grad is None
    assert net.stages[0].blocks[1].expand.conv.weight.grad.abs().sum() > 0


# BN statistics -----------------------------------------------------------------------------
def test_bn_state_of_a_recalibrated_subnet_restores_its_outputs(space, trained_like):
    net = trained_like
    archs = space.sample_unique(np.random.default_rng(5), 2)
    recal = _batches(2, seed=11)
    subs = []
    for arch in archs:
        sub = net.extract_subnet(arch)
        recalibrate_bn(sub, recal)
        subs.append(sub.eval())
    stats = [
        {k: v for k, v in s.state_dict().items() if k.endswith(("running_mean", "running_var"))}
        for s in subs
    ]
    x = _batches(1, size=3, seed=12)[0]
    # load another member's statistics first, then switch to the first member
    net.set_active(archs[1])
    net.load_bn_state(stats[1])
    net.set_active(archs[0])
    net.load_bn_state(stats[0])
    with torch.no_grad():
        torch.testing.assert_close(net(x), subs[0](x), rtol=1e-5, atol=1e-6)
    state = net.bn_state()
    assert set(state) == set(stats[0])
    for k, v in state.items():
        assert torch.equal(v, stats[0][k]), k
    net.set_active(archs[1])
    net.load_bn_state(stats[1])
    with torch.no_grad():
        torch.testing.assert_close(net(x), subs[1](x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a BN running statistic"):
        net.load_bn_state({"classifier.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="at most"):
        net.load_bn_state({"final_expand.bn.running_mean": torch.zeros(10_000)})


def test_recalibrating_the_supernet_path_equals_recalibrating_its_subnet(space, trained_like):
    """Dynamic BN in train mode with momentum None updates exactly the leading slice."""
    net = trained_like
    arch = space.sample(np.random.default_rng(9))
    net.set_active(arch)
    sub = net.extract_subnet(arch)
    batches = _batches(3, seed=21)
    full_before = net.stages[0].blocks[0].expand.bn.running_mean.clone()
    recalibrate_bn(sub, batches)
    recalibrate_bn(net, batches)
    sub_stats = {k: v for k, v in sub.state_dict().items() if k.endswith("running_var")}
    state = net.bn_state()
    for k, v in sub_stats.items():
        torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6)
    mid = net.stages[0].blocks[0].active_mid
    if mid < net.stages[0].blocks[0].max_mid:  # reset_running_stats reset the rest to 0
        assert torch.all(net.stages[0].blocks[0].expand.bn.running_mean[mid:] == 0)
    assert not torch.equal(full_before, net.stages[0].blocks[0].expand.bn.running_mean)


def test_set_active_copies_no_weights(space):
    net = space.build_supernet()
    ptrs = {k: v.data_ptr() for k, v in net.state_dict().items()}
    values = {k: v.clone() for k, v in net.state_dict().items()}
    for arch in space.sample(np.random.default_rng(0), 20):
        net.set_active(arch)
        assert net.active_arch == arch
    assert {k: v.data_ptr() for k, v in net.state_dict().items()} == ptrs
    assert all(torch.equal(v, values[k]) for k, v in net.state_dict().items())


def test_reorganize_channels_keeps_the_largest_expand_paths(space, trained_like):
    net = OFAMobileNetV3(space)
    net.load_state_dict(trained_like.state_dict())
    net.eval().double()  # float64: a permutation only reorders sums, so outputs match to 1e-10
    x = _batches(1, size=3, seed=4)[0].double()
    rng = np.random.default_rng(3)
    max_expand = [
        {k: (6 if k.endswith(".expand") else v) for k, v in a.items()}
        for a in [space.max_arch(), *space.sample(rng, 2)]
    ]
    small = {k: (3 if k.endswith(".expand") else v) for k, v in space.max_arch().items()}
    before = []
    with torch.no_grad():
        for a in [*max_expand, small]:
            net.set_active(a)
            before.append(net(x))
        net.reorganize_channels()
        for a, y in zip(max_expand, before, strict=False):
            net.set_active(a)
            torch.testing.assert_close(net(x), y, rtol=1e-10, atol=1e-10)
        net.set_active(small)
        assert not torch.allclose(net(x), before[-1])  # OFA changes the smaller paths on purpose
    for stage in net.stages:
        for block in stage.blocks:
            imp = block.project.conv.weight.abs().sum((0, 2, 3))
            assert torch.all(imp[:-1] >= imp[1:])


# Evaluators, LUT and devices ---------------------------------------------------------------
def test_subnet_evaluator_works_on_the_supernet(space, trained_like):
    gen = torch.Generator().manual_seed(0)
    recal = _batches(2, size=4, seed=30)
    val = [(torch.randn(6, 3, 32, 32, generator=gen), torch.randint(0, 10, (6,), generator=gen))]
    evaluator = SubnetEvaluator(recal, val)
    archs = space.sample_unique(np.random.default_rng(8), 2)
    before = {k: v.clone() for k, v in trained_like.state_dict().items()}
    results = evaluator.evaluate(trained_like, [space.serialize(a) for a in archs], progress=False)
    assert [space.parse(r["arch"]) for r in results] == archs
    for arch, rec in zip(archs, results, strict=True):
        sub = trained_like.extract_subnet(arch)
        recalibrate_bn(sub, recal)
        assert rec["acc_top1"] == accuracy(sub, val)["acc_top1"]
        assert rec["loss"] == pytest.approx(accuracy(sub, val)["loss"])
    assert all(torch.equal(v, before[k]) for k, v in trained_like.state_dict().items())


def test_lut_and_cpu_device_measure_built_subnets(space, tmp_path):
    archs = [space.min_arch(), {**space.max_arch(), "resolution": 24}]
    nets = [(a, space.build_subnet(a)) for a in archs]
    for _, sub in nets:
        assert not isinstance(sub, OFAMobileNetV3)
        assert sub(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    lut = build_lut(nets, CPUDevice(**FAST), tmp_path / "lut.json")
    assert any(s.startswith("Conv2d(") for s in lut.ops) and any("Hardswish" in s for s in lut.ops)
    assert any("interpolate" in s for s in lut.ops)
    # the same op at one shape is timed once: predictions sum the parts
    trace = trace_ops(nets[0][1].eval(), torch.zeros(1, 3, 32, 32))
    assert lut.op_sum(trace.signatures) > 0
    device = CPUDevice(space=space, **FAST)
    out = device.metrics(space.serialize(archs[0]) and archs[0])
    assert out["latency_ms"] > 0 and out["settings"]["resolution"] == 32


def test_built_subnet_matches_the_extracted_layout(space):
    arch = space.sample(np.random.default_rng(4))
    fresh = space.build_subnet(arch)
    extracted = space.build_supernet().extract_subnet(arch)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {
        k: v.shape for k, v in extracted.state_dict().items()
    }
    out = fresh(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10) and fresh.classifier.weight.grad is not None
    big = OFAMobileNetV3(width_mult=0.25, stages=3, resolutions=(32,), num_classes=5)
    assert big(torch.randn(1, 3, 40, 40)).shape == (1, 5) and len(big.stages) == 3
