"""Forward-hook latency LUT: signatures, dedup, resumable build, sum-of-parts prediction."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from hardware.lut import (
    LatencyLUT,
    LUTDevice,
    MissingOpsError,
    build_lut,
    op_signature,
    spanning_subset,
    trace_ops,
)
from hardware.measure import CPUDevice
from search.spaces import create_space

FAST = dict(warmup=1, min_repeats=3, max_repeats=6, round_size=3, energy=False)


class Repeated(nn.Module):
    """A non-NB201 network: three identical blocks, one different, a functional add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()) for _ in range(3)
        )
        self.wide = nn.Conv2d(8, 16, 1)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = x + b(x)
        return self.head(self.wide(x).mean((2, 3)))


def test_trace_records_every_leaf_call_and_dedups_signatures():
    modules_only = trace_ops(Repeated().eval(), torch.zeros(1, 3, 8, 8), functional=False)
    assert len(modules_only.signatures) == 1 + 3 * 2 + 1 + 1  # stem, 3 x (conv, relu), wide, head
    assert len(modules_only.examples) == 5  # the three blocks share two signatures
    trace = trace_ops(Repeated().eval(), torch.zeros(1, 3, 8, 8))
    # Functional ops outside leaf modules are ops too: three residual adds and the mean; the
    # F.conv2d / F.relu calls inside the leaf modules are not counted twice.
    extra = [s for s in trace.signatures if s.startswith("fn:")]
    assert len(extra) == 4 and len(trace.signatures) == 9 + 4
    assert sum(".add|" in s for s in extra) == 3 and ".mean|" in extra[-1]
    assert len(trace.examples) == 5 + 2
    conv = (
        "Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
        "|in=(1x8x8x8:float32)|out=1x8x8x8:float32"
    )
    assert trace.counts[conv] == 3
    # Same op at a different input shape is a different signature; after pooling, the head
    # sees the same shape at both resolutions and shares its signature.
    other = trace_ops(Repeated().eval(), torch.zeros(1, 3, 16, 16))
    shared = set(other.examples) & set(trace.examples)
    assert [s.split("(")[0] for s in shared] == ["Linear"]


def test_signature_names_class_settings_and_shapes():
    m = nn.AvgPool2d(3, stride=1, padding=1)
    x = torch.zeros(2, 4, 5, 5)
    sig = op_signature(m, (x,), {}, m(x))
    assert (
        sig
        == "AvgPool2d(kernel_size=3, stride=1, padding=1)|in=(2x4x5x5:float32)|out=2x4x5x5:float32"
    )


class CountingCPU(CPUDevice):
    """Counts timed ops and can fail after a number of them (a crash mid-build)."""

    def __init__(self, fail_after=None, **kw):
        super().__init__(**kw)
        self.timed, self.fail_after = 0, fail_after

    def time_callable(self, fn):
        if self.fail_after is not None and self.timed >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.timed += 1
        return super().time_callable(fn)


@pytest.fixture(scope="module")
def tiny_space():
    return create_space("nb201", channels=4, cells_per_stage=1)


def test_build_is_resumable_and_skips_done_signatures(tiny_space, tmp_path):
    archs = tiny_space.sample_unique(np.random.default_rng(0), 6)
    models = lambda: ((a, tiny_space.build_subnet(a)) for a in archs)  # noqa: E731
    path = tmp_path / "lut.json"
    with pytest.raises(KeyboardInterrupt):
        build_lut(models(), CountingCPU(fail_after=4, **FAST), path)
    partial = json.loads(path.read_text())
    assert len(partial["ops"]) == 4  # written after every signature
    resumed = CountingCPU(**FAST)
    lut = build_lut(models(), resumed, path)
    fresh = CountingCPU(**FAST)
    full = build_lut(models(), fresh, tmp_path / "fresh.json")
    assert set(lut.ops) == set(full.ops)
    assert resumed.timed == len(full.ops) - 4 == fresh.timed - 4
    for sig, entry in json.loads(path.read_text())["ops"].items():
        assert set(entry) >= {"count", "mean_ms", "std_ms"} and entry["count"] >= 3, sig
    again = CountingCPU(**FAST)
    build_lut(models(), again, path)
    assert again.timed == 0  # a rerun times nothing


def test_prediction_is_the_sum_of_parts(tiny_space, tmp_path):
    archs = tiny_space.sample_unique(np.random.default_rng(1), 4)
    dev = CPUDevice(**FAST)
    lut = build_lut(
        ((a, tiny_space.build_subnet(a)) for a in archs), dev, tmp_path / "l.json", calibrate=3
    )
    x = torch.zeros(1, 3, 32, 32)
    traces = [trace_ops(tiny_space.build_subnet(a).eval(), x) for a in archs]
    calls = [len(t.signatures) for t in traces]
    sums = [lut.op_sum(t.signatures) for t in traces]
    picked = spanning_subset(calls, sums, 3)
    assert lut.calibration["archs"] == [archs[i] for i in picked]
    assert lut.calibration["n_calls"] == [calls[i] for i in picked]
    assert lut.fixed_ms is not None and lut.per_call_ms is not None
    device = LUTDevice(str(tmp_path / "l.json"), space=tiny_space)
    for arch, trace in zip(archs, traces, strict=True):
        brute = sum(lut.ops[s]["median_ms"] for s in trace.signatures)  # call by call
        out = device.metrics(arch)
        assert out["latency_op_sum_ms"] == pytest.approx(brute)
        n = len(trace.signatures)
        assert out["latency_n_calls"] == n
        assert out["latency_ms"] == pytest.approx(brute + n * lut.per_call_ms + lut.fixed_ms)
        assert out["energy_mj"] is None and "no energy" in out["energy_mj_reason"]
    assert device.metrics(archs[0])["settings"]["threads"] == 1


def test_calibration_rule_and_unknown_ops(tmp_path):
    ops = {"a": {"median_ms": 1.0, "mean_ms": 1.5}, "b": {"median_ms": 2.0, "mean_ms": 2.0}}
    lut = LatencyLUT(ops)
    # Fewer than 3 networks (or one call count): no slope, fixed = median of the gaps.
    lut.calibrate([5.0, 6.0, 100.0], [4.0, 4.0, 4.0], [3, 3, 3])
    assert lut.per_call_ms == 0.0 and lut.fixed_ms == 2.0  # median of (1, 2, 96)
    assert lut.predict(["a", "b", "b"]) == 5.0 + 2.0
    assert LatencyLUT(lut.ops, stat="mean_ms").op_sum(Counter({"a": 2}).elements()) == 3.0
    with pytest.raises(KeyError, match="not in the LUT"):
        lut.op_sum(["a", "c"])
    with pytest.raises(ValueError, match="op-call counts"):
        lut.calibrate([5.0, 6.0], [4.0, 4.0], [3])

    # Noise-free networks with a per-call overhead: the fit recovers it exactly, and the
    # old median rule (slope 1, intercept only) would not rank them right.
    calls = np.array([100, 140, 180, 260, 340])
    sums = np.array([9.0, 7.0, 8.0, 6.0, 5.0])
    measured = sums + 0.01 * calls + 0.5
    lut.calibrate(measured, sums, calls, names=list("vwxyz"))
    assert lut.per_call_ms == pytest.approx(0.01) and lut.fixed_ms == pytest.approx(0.5)
    assert lut.calibration["residual_rms_ms"] == pytest.approx(0.0, abs=1e-9)
    assert lut.overhead(200) == pytest.approx(2.5)
    # One disturbed measurement (the longest network measured during a burst of load) would
    # tilt a least-squares slope; leave-one-out says the intercept alone predicts better.
    lut.calibrate(sums + np.array([1.0, 1.1, 0.9, 1.0, 3.0]), sums, calls)
    assert lut.per_call_ms == 0.0 and lut.fixed_ms == 1.0
    loo = lut.calibration["leave_one_out_mae_ms"]
    assert loo["fixed"] < loo["per_call"]
    # A negative per-call term (a GPU pipelining away the launch latency that isolated timing
    # pays per op) is allowed, but never below minus the fastest op (1 ms here).
    lut.calibrate(sums - 0.2 * calls, sums, calls)
    assert lut.per_call_ms == pytest.approx(-0.2)
    lut.calibrate(sums - 3.0 * calls, sums, calls)
    assert lut.per_call_ms == pytest.approx(-1.0)
    # Both terms survive a save / load; a file without per_call_ms predicts with 0.
    lut.save(tmp_path / "c.json")
    again = LatencyLUT.load(tmp_path / "c.json")
    assert (again.per_call_ms, again.fixed_ms) == (lut.per_call_ms, lut.fixed_ms)
    old = json.loads((tmp_path / "c.json").read_text())
    del old["per_call_ms"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert LatencyLUT.load(tmp_path / "old.json").predict(["a"]) == 1.0 + lut.fixed_ms


def test_calibration_networks_span_the_call_counts():
    calls = [100, 340, 180, 180, 260, 120, 300, 100]
    sums = [5.0, 9.0, 6.0, 7.0, 8.0, 5.5, 8.5, 4.0]
    picked = spanning_subset(calls, sums, 3)
    assert picked == [1, 3, 7]  # shortest (fewest calls, smallest sum), middle, longest
    assert spanning_subset(calls, sums, 20) == list(range(8))
    assert len(set(spanning_subset(calls, sums, 5))) == 5


class DisturbedCPU(CPUDevice):
    """Whole-network latency 1 ms per op call, except one measurement taken while the machine
    is busy (10x)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.calls = 0

    def metrics(self, arch, model=None):
        self.calls += 1
        n = len(trace_ops(model, self.example_input(self.torch_device), False).signatures)
        return {"latency_ms": float(n) * (10.0 if self.calls == 2 else 1.0)}


def test_calibration_takes_the_median_of_interleaved_passes(tiny_space, tmp_path):
    archs = tiny_space.sample_unique(np.random.default_rng(2), 4)
    dev = DisturbedCPU(**FAST)
    lut = build_lut(
        ((a, tiny_space.build_subnet(a)) for a in archs),
        dev,
        tmp_path / "l.json",
        calibrate=3,
        functional=False,
    )
    record = lut.calibration
    assert dev.calls == 3 * 3 and [len(p) for p in record["measured_passes_ms"]] == [3, 3, 3]
    # the disturbed measurement is in the passes but not in what the fit saw
    assert max(max(p) for p in record["measured_passes_ms"]) >= 10 * min(record["n_calls"])
    assert record["measured_ms"] == [float(n) for n in record["n_calls"]]
    with pytest.raises(ValueError, match="calibration_passes must be >= 1"):
        build_lut([], dev, None, calibrate=1, calibration_passes=0)


def test_refuses_to_mix_device_settings(tiny_space, tmp_path):
    arch = tiny_space.sample(np.random.default_rng(2))
    net = tiny_space.build_subnet(arch)
    lut = build_lut([(arch, net)], CPUDevice(**FAST), tmp_path / "l.json")
    assert any(sig.startswith("fn:") for sig in lut.ops)  # the cell's additions are timed
    with pytest.raises(ValueError, match="different device settings.*batch_size"):
        build_lut(
            [(arch, tiny_space.build_subnet(arch))],
            CPUDevice(batch_size=2, **FAST),
            tmp_path / "l.json",
        )
    with pytest.raises(ValueError, match="built with functional=True"):
        build_lut([(arch, net)], CPUDevice(**FAST), tmp_path / "l.json", functional=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LatencyLUT.load(tmp_path / "nope.json")


class WidthSpace:
    """A builder of mapping architectures (decision label -> choice) that hardware never parses."""

    def build_subnet(self, arch):
        width = int(arch["width"])
        act = nn.ReLU() if arch["act"] == "relu" else nn.Identity()
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), act, nn.Conv2d(width, 4, 1))


@pytest.fixture()
def mapping_lut(tmp_path):
    space = WidthSpace()
    arch = {"width": "4", "act": "relu"}
    path = tmp_path / "map.json"
    build_lut([(arch, space.build_subnet(arch))], CPUDevice(resolution=8, **FAST), path)
    return space, arch, path


def test_lut_device_takes_a_mapping_arch_and_caches_on_its_content(mapping_lut):
    space, arch, path = mapping_lut
    device = LUTDevice(str(path), space=space)
    out = device.metrics(arch)
    assert out["arch"] == arch and json.loads(json.dumps(out))["arch"] == arch
    assert out["latency_ms"] == pytest.approx(device.lut.predict(device.signatures(arch)))
    reordered = {"act": "relu", "width": "4"}  # same architecture, other key order
    assert device.metrics(reordered)["latency_op_sum_ms"] == out["latency_op_sum_ms"]
    assert len(device._signatures) == 1  # one cache entry for both


def test_missing_signature_error_names_ops_arch_file_and_remedy(mapping_lut):
    space, _, path = mapping_lut
    before = path.read_text()
    device = LUTDevice(str(path), space=space)
    wide = {"width": "6", "act": "relu"}
    with pytest.raises(MissingOpsError) as info:
        device.metrics(wide)
    err = info.value
    assert isinstance(err, KeyError)
    msg = str(err)
    assert "op signature(s) for architecture {'width': '6', 'act': 'relu'}" in msg
    assert "are not in the LUT" in msg and str(path) in msg
    assert "Conv2d(3, 6, kernel_size=(3, 3)" in msg  # the missing signature itself
    assert "on_missing='measure'" in msg and "search.lut_cli" in msg  # how to measure them
    assert err.signatures and all(s not in device.lut.ops for s in err.signatures)
    assert path.read_text() == before  # the default never touches the file
    with pytest.raises(ValueError, match="on_missing must be one of"):
        LUTDevice(str(path), space=space, on_missing="guess")


def test_on_missing_measure_extends_records_and_saves(mapping_lut):
    space, arch, path = mapping_lut
    known = set(LatencyLUT.load(path).ops)
    timer = CountingCPU(resolution=8, **FAST)
    device = LUTDevice(str(path), space=space, on_missing="measure", measure_device=timer)
    wide = {"width": "6", "act": "none"}
    out = device.metrics(wide)
    saved = LatencyLUT.load(path)
    new = set(saved.ops) - known
    assert timer.timed == len(new) > 0 and out["latency_ms"] > 0
    for sig in new:
        entry = saved.ops[sig]
        assert entry["source"] == "on_demand" and entry["measured_at"].endswith("Z"), sig
        assert entry["count"] >= 3
    assert all("source" not in saved.ops[s] for s in known)  # built entries are unchanged
    assert out["latency_op_sum_ms"] == pytest.approx(saved.op_sum(device.signatures(wide)))
    device.metrics(wide)
    assert timer.timed == len(new)  # nothing left to measure
    # With no measuring device given, one is rebuilt from the LUT's own settings.
    rebuilt = LUTDevice(str(path), space=space, on_missing="measure")
    assert rebuilt.metrics({"width": "5", "act": "relu"})["latency_ms"] > 0
    assert len(LatencyLUT.load(path).ops) > len(saved.ops)


def test_on_missing_measure_refuses_other_device_settings(mapping_lut):
    space, _, path = mapping_lut
    before = path.read_text()
    other = CountingCPU(resolution=8, batch_size=2, **FAST)  # not the LUT's batch size
    device = LUTDevice(str(path), space=space, on_missing="measure", measure_device=other)
    with pytest.raises(ValueError, match="different device settings.*batch_size"):
        device.metrics({"width": "6", "act": "relu"})
    assert other.timed == 0 and path.read_text() == before  # nothing timed, file unchanged
