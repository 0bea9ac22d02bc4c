"""The runtime manager: switches restore a member's exact outputs; timing and policy wiring."""

from __future__ import annotations

import pytest
import torch

from hardware.runtime.controller import ReactiveController
from hardware.runtime.family import load_family, save_family
from hardware.runtime.manager import RuntimeManager
from hardware.runtime.policies import InfeasibleConstraint
from tests.hardware.test_runtime_toys import (
    TOY_ARCHS,
    FakeClock,
    FakeLatencyModel,
    ToyElastic,
    fake_family,
    recalibrated_bn,
    toy_family,
)


@pytest.fixture
def toy():
    net = ToyElastic(seed=1)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, 8, 8, generator=g) * 2 + 0.5 for _ in range(3)]
    return net, toy_family(net, batches)


def test_switch_reproduces_each_recalibrated_member_exactly_also_after_switching_back(toy):
    net, fam = toy
    x = torch.randn(5, 3, 8, 8)
    expected = {}
    for arch in TOY_ARCHS:
        sub = net.extract_subnet(arch)
        sub.load_state_dict({**sub.state_dict(), **fam.bn[f"w{arch['width']}d{arch['depth']}"]})
        with torch.no_grad():
            expected[arch["width"]] = sub.eval()(x)
    mgr = RuntimeManager(net, fam, "cpu_1t", level=3)
    for level in (1, 3, 2, 1, 3, 2):  # away and back: each switch fully replaces the stats
        mgr.switch(level)
        out, rec = mgr.infer(x)
        assert rec.level == level
        torch.testing.assert_close(out, expected[TOY_ARCHS[level - 1]["width"]], rtol=0, atol=1e-6)


def test_without_the_bn_load_the_outputs_differ(toy):
    # The exactness above is not vacuous: set_active alone leaves another member's stats.
    net, fam = toy
    x = torch.randn(5, 3, 8, 8)
    mgr = RuntimeManager(net, fam, "cpu_1t", level=2)
    want, _ = mgr.infer(x)
    mgr.switch(3)
    net.set_active(TOY_ARCHS[1])  # back to level 2's path, without its BN stats
    with torch.no_grad():
        stale = net(x)
    assert not torch.allclose(stale, want, atol=1e-4)


def test_family_from_disk_serves_the_same_outputs(toy, tmp_path):
    net, fam = toy
    levels = fam.levels("cpu_1t")
    save_family(tmp_path / "f", space=fam.space, processors={"cpu_1t": levels}, bn=fam.bn)
    disk = load_family(tmp_path / "f")
    x = torch.randn(2, 3, 8, 8)
    a, _ = RuntimeManager(net, fam, "cpu_1t", level=2).infer(x)
    b, _ = RuntimeManager(net, disk, "cpu_1t", level=2).infer(x)
    assert torch.equal(a, b)


def test_switch_records_its_time_split_and_the_first_request_after_it():
    clock = FakeClock()
    model = FakeLatencyModel(clock, {"L1": 1.0, "L2": 2.0})
    fam = fake_family([1.0, 2.0], [50.0, 60.0])
    mgr = RuntimeManager(model, fam, "cpu_1t", clock=clock)
    assert mgr.level == 2 and mgr.switches[0].reason == "init"  # no target: the top level
    ev = mgr.switch(1, reason="manual")
    assert (ev.from_level, ev.to_level, ev.request) == (2, 1, 0)
    assert ev.switch_ms == ev.set_active_ms + ev.load_bn_ms
    assert model.arch == {"id": "L1"} and model.bn_loaded[-1] == "L1.running_mean"
    _, r0 = mgr.infer(torch.zeros(1, 3))
    _, r1 = mgr.infer(torch.zeros(1, 3))
    assert (r0.switched, r1.switched) == (True, False)
    assert r0.latency_ms == pytest.approx(1.0)  # timed on the injected clock
    with pytest.raises(ValueError, match=r"level 3 is outside the 'cpu_1t' ladder 1..2"):
        mgr.switch(3)


def test_lookup_table_on_target_and_controller_steps_on_observed_latency():
    clock = FakeClock()
    lat = {"L1": 2.0, "L2": 4.0, "L3": 6.0, "L4": 8.0}
    model = FakeLatencyModel(clock, lat)
    fam = fake_family(list(lat.values()), [60, 62, 64, 66])
    ctrl = ReactiveController([2, 4, 6, 8], window=5, band=0.15, cooldown=0)
    mgr = RuntimeManager(model, fam, "cpu_1t", controller=ctrl, target_ms=9.0, clock=clock)
    assert mgr.level == 4  # the table's pick for 9 ms
    mgr.set_target(5.0)
    assert mgr.level == 2 and mgr.switches[-1].reason == "target"
    mgr.set_target(9.0)
    model.factor = 1.4  # load: level 4 runs at 11.2 ms, 3 at 8.4 ms (meets 9, inside the band)
    records = [mgr.infer(torch.zeros(1))[1] for _ in range(30)]
    assert [s.reason for s in mgr.switches[-1:]] == ["down"]
    assert mgr.level == 3
    assert records[4].reason == "down" and records[4].next_level == 3
    with pytest.raises(InfeasibleConstraint, match="latency_ms <= 1"):
        mgr.set_target(1.0)


def test_model_without_the_switch_interface_is_refused():
    fam = fake_family([1.0], [50.0])
    with pytest.raises(TypeError, match="lacks set_active"):
        RuntimeManager(torch.nn.Linear(2, 2), fam, "cpu_1t")


def test_controller_of_another_ladder_is_refused():
    fam = fake_family([1.0, 2.0], [50.0, 60.0])
    model = FakeLatencyModel(FakeClock(), {"L1": 1.0, "L2": 2.0})
    with pytest.raises(ValueError, match="controller has 3 levels"):
        RuntimeManager(model, fam, "cpu_1t", controller=ReactiveController([1, 2, 3]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_bn_tensors_live_on_the_device_and_outputs_match(toy):
    net, fam = toy
    x = torch.randn(3, 3, 8, 8)
    cpu, _ = RuntimeManager(net, fam, "cpu_1t", level=2).infer(x)
    mgr = RuntimeManager(net.cuda(), fam, "cpu_1t", level=2, device="cuda")
    assert all(t.is_cuda for t in mgr._bn[0].values())
    out, _ = mgr.infer(x.cuda())
    torch.testing.assert_close(out.cpu(), cpu, rtol=1e-4, atol=1e-4)


def test_recalibrated_helper_changes_stats():  # the fixture's BN stats are not the defaults
    net = ToyElastic()
    stats = recalibrated_bn(net.extract_subnet(TOY_ARCHS[2]), [torch.randn(4, 3, 8, 8) + 3])
    assert not torch.allclose(stats["bn1.running_var"], torch.ones(8))
