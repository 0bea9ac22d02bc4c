"""DVFS: spaces, the frequency model's documented behaviour, sysfs and NVML backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hardware.dvfs import (
    DvfsDevice,
    DvfsModel,
    DvfsSpace,
    DvfsUnavailable,
    NvmlClockBackend,
    SysfsDvfsBackend,
    fit_dvfs_model,
    workload_profile,
)
from hardware.table import TableDevice
from search.benchmarks import NB201Table
from tests.hardware.fakes import FakeNVML

TX2 = {
    "gpu": {"min_mhz": 100, "max_mhz": 1400, "count": 13},
    "cpu": {"levels_mhz": [345.6, 960.0, 2035.2]},
    "emc": {"min_mhz": 200, "max_mhz": 1800, "count": 11},
}


@pytest.fixture
def space() -> DvfsSpace:
    return DvfsSpace("tx2", TX2)


def test_space_levels_validation_and_encoding(space):
    assert space.levels("gpu")[[0, -1]].tolist() == [100, 1400] and len(space.levels("gpu")) == 13
    assert len(space) == 13 * 3 * 11 == len(list(space.settings()))
    s = space.sample(np.random.default_rng(0))
    assert space.decode(space.encode(s)) == s
    assert space.max_setting() == {"gpu": 1400.0, "cpu": 2035.2, "emc": 1800.0}
    with pytest.raises(KeyError, match=r"unknown clock domain.*\['gpu', 'cpu', 'emc'\]"):
        space.validate({"dla": 100})
    with pytest.raises(ValueError, match="not a level of 'cpu'.*345.6"):
        space.validate({"cpu": 1000})
    with pytest.raises(ValueError, match="needs levels_mhz or"):
        DvfsSpace("bad", {"gpu": {"max_mhz": 3}})


def _grid(model, space, intensity, energy=30.0):
    """latency[g, e] and energy[g, e] over the GPU x EMC grid."""
    lat = np.zeros((13, 11))
    en = np.zeros((13, 11))
    for i, g in enumerate(space.levels("gpu")):
        for j, e in enumerate(space.levels("emc")):
            out = model.predict(10.0, energy, {"gpu": g, "emc": e}, intensity)
            lat[i, j], en[i, j] = out["latency_ms"], out["energy_mj"]
    return lat, en


@pytest.mark.parametrize("intensity", [0.5, 10.0, 200.0])
def test_latency_never_increases_with_clocks(space, intensity):
    model = DvfsModel(space, host_domain="cpu", host_share=0.1)
    lat, _ = _grid(model, space, intensity)
    assert (np.diff(lat, axis=0) <= 1e-12).all() and (np.diff(lat, axis=1) <= 1e-12).all()
    top = model.predict(10.0, 30.0, {}, intensity)
    assert top["latency_ms"] == pytest.approx(10.0) and top["energy_mj"] == pytest.approx(30.0)
    # Halving the host clock costs exactly the host share.
    slow_host = model.predict(10.0, None, {"cpu": 960.0}, intensity)["latency_ms"]
    assert slow_host == pytest.approx(10.0 * (0.9 + 0.1 * 2035.2 / 960.0))


def test_compute_vs_memory_split(space):
    model = DvfsModel(space, ridge_intensity=10.0)
    assert model.compute_share(10.0) == 0.5 and model.compute_share(30.0) == 0.75
    # A memory-bound workload barely notices the core clock; a compute-bound one, the EMC.
    mem = model.predict(10.0, None, {"gpu": 100}, intensity=0.001)["latency_ms"]
    comp = model.predict(10.0, None, {"emc": 200}, intensity=1e5)["latency_ms"]
    c = 0.001 / 10.001  # compute share of the memory-bound workload
    assert mem == pytest.approx(10.0 * ((1 - c) + c * 1400 / 100))
    assert mem < 10.02 and comp < 10.01
    assert model.predict(10.0, None, {"gpu": 750}, intensity=1e5)["latency_ms"] == pytest.approx(
        10.0 * 1400 / 750, rel=1e-3
    )


def test_energy_behaviour_as_documented(space):
    # No static power: slower clocks only lower V, so energy never rises when clocks drop.
    _, en = _grid(DvfsModel(space, static_power_fraction=0.0), space, 10.0)
    assert (np.diff(en, axis=0) >= -1e-12).all() and (np.diff(en, axis=1) >= -1e-12).all()
    # No voltage scaling: only static energy ~ time changes: race to idle wins.
    _, en = _grid(DvfsModel(space, v_min_ratio=1.0), space, 10.0)
    assert (np.diff(en, axis=0) <= 1e-12).all() and (np.diff(en, axis=1) <= 1e-12).all()
    # Both: an interior optimum (neither the lowest nor the highest GPU clock).
    _, en = _grid(DvfsModel(space, static_power_fraction=0.3, v_min_ratio=0.6), space, 1e4)
    best_gpu = int(np.argmin(en[:, -1]))
    assert 0 < best_gpu < 12
    assert DvfsModel(space).predict(10.0, None, {}, 5.0)["energy_mj"] is None


def test_workload_profile_counts_flops_and_bytes():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    prof = workload_profile(conv, torch.zeros(1, 3, 8, 8))
    assert prof["flops"] == 2 * 3 * 9 * 8 * 64
    assert prof["bytes"] == 4 * (3 * 64 + 8 * 64 + 8 * 3 * 9)
    assert prof["intensity"] == pytest.approx(prof["flops"] / prof["bytes"])


def test_dvfs_device_over_table_column(space):
    base = TableDevice(NB201Table.bundled(), "edgegpu")
    frame = base.table.frame
    arch = frame.loc[frame["latency_ms_edgegpu"].notna(), "arch_str"].iloc[3]
    dev = DvfsDevice(base, DvfsModel(space), setting={"gpu": 750.0}, intensity=8.0)
    out = dev.metrics(arch)
    ref = base.metrics(arch)
    assert out["latency_ms"] > ref["latency_ms"]
    assert out["settings"]["frequency_setting"]["gpu"] == 750.0
    assert dev.metrics(arch, setting={})["latency_ms"] == pytest.approx(ref["latency_ms"])
    missing = frame.loc[frame["latency_ms_edgegpu"].isna(), "arch_str"].iloc[0]
    assert dev.metrics(missing)["latency_ms"] is None


# -------------------------------------------------------------------------- sysfs backend

GPU_DIR = "sys/devices/17000000.gp10b/devfreq/17000000.gp10b"
CPU_DIRS = ["sys/devices/system/cpu/cpu1/cpufreq", "sys/devices/system/cpu/cpu2/cpufreq"]
EMC_DIR = "sys/kernel/debug/bpmp/debug/clk/emc"
LAYOUT = {
    "gpu": {"kind": "devfreq", "paths": ["/" + GPU_DIR]},
    "cpu": {"kind": "cpufreq", "paths": ["/" + d for d in CPU_DIRS]},
    "emc": {"kind": "bpmp_clk", "paths": ["/" + EMC_DIR]},
}


def fake_tree(root):
    """A Jetson-like sysfs tree: devfreq in Hz, cpufreq in kHz, BPMP EMC clock."""

    def write(rel, name, value):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(f"{value}\n")

    for name, v in [
        ("available_frequencies", "114750000 522750000 1300500000"),
        ("min_freq", 114750000),
        ("max_freq", 1300500000),
        ("cur_freq", 1300500000),
    ]:
        write(GPU_DIR, name, v)
    for d in CPU_DIRS:
        for name, v in [
            ("scaling_available_frequencies", "345600 960000 2035200"),
            ("scaling_min_freq", 345600),
            ("scaling_max_freq", 2035200),
            ("scaling_cur_freq", 2035200),
        ]:
            write(d, name, v)
    for name, v in [("rate", 1866000000), ("mrq_rate_locked", 0), ("state", 0)]:
        write(EMC_DIR, name, v)
    return root


def read(root, rel, name):
    return (root / rel / name).read_text().strip()


def test_sysfs_backend_writes_the_right_files(tmp_path):
    root = fake_tree(tmp_path)
    backend = SysfsDvfsBackend(LAYOUT, root=str(root))
    assert backend.available("gpu") == [114.75, 522.75, 1300.5]
    assert backend.available("cpu") == [345.6, 960.0, 2035.2]
    backend.set({"gpu": 522.75, "cpu": 960.0, "emc": 1600.0})
    assert read(root, GPU_DIR, "min_freq") == read(root, GPU_DIR, "max_freq") == "522750000"
    for d in CPU_DIRS:
        assert read(root, d, "scaling_min_freq") == read(root, d, "scaling_max_freq") == "960000"
    assert (read(root, EMC_DIR, "rate"), read(root, EMC_DIR, "mrq_rate_locked")) == (
        "1600000000",
        "1",
    )
    backend.set({"gpu": 1300.5})  # raising: max first, so min <= max throughout
    assert read(root, GPU_DIR, "min_freq") == read(root, GPU_DIR, "max_freq") == "1300500000"
    backend.restore()
    assert (
        read(root, GPU_DIR, "min_freq") == "114750000"
        and read(root, GPU_DIR, "max_freq") == "1300500000"
    )
    assert read(root, CPU_DIRS[0], "scaling_min_freq") == "345600"
    assert read(root, EMC_DIR, "rate") == "1866000000"


def test_sysfs_backend_refuses_before_writing(tmp_path):
    root = fake_tree(tmp_path)
    backend = SysfsDvfsBackend(LAYOUT, root=str(root))
    with pytest.raises(ValueError, match=r"not an available level of 'gpu'.*114.75"):
        backend.set({"gpu": 600.0})
    (root / EMC_DIR / "rate").unlink()
    with pytest.raises(DvfsUnavailable, match="rate does not exist"):
        backend.set({"gpu": 522.75, "emc": 1600.0})
    assert read(root, GPU_DIR, "min_freq") == "114750000"  # nothing was written
    (root / GPU_DIR / "max_freq").chmod(0o444)
    with pytest.raises(PermissionError, match="max_freq is not writable.*root"):
        backend.set({"gpu": 522.75})
    assert read(root, GPU_DIR, "min_freq") == "114750000"
    with pytest.raises(KeyError, match="unknown clock domain 'dla'"):
        backend.set({"dla": 100.0})
    with pytest.raises(DvfsUnavailable, match="does not exist"):
        SysfsDvfsBackend(LAYOUT, root=str(tmp_path / "elsewhere")).current()


def test_space_config_gives_its_backend(tmp_path):
    root = fake_tree(tmp_path)
    space = DvfsSpace("tx2", TX2, sysfs=LAYOUT)
    assert space.sysfs_backend(root=str(root)).current()["gpu"] == 1300.5
    with pytest.raises(DvfsUnavailable, match="names no sysfs"):
        DvfsSpace("tx2", TX2).sysfs_backend()


# -------------------------------------------------------------------------- NVML backend


class ClockNVML(FakeNVML):
    def __init__(self, allowed=True):
        super().__init__()
        self.allowed = allowed

    def nvmlDeviceGetSupportedMemoryClocks(self, h):
        return [877, 1593]

    def nvmlDeviceGetSupportedGraphicsClocks(self, h, mem):
        return [210, 900, 1410] if mem == 1593 else [210, 600]

    def _record(self, name, *args):
        if not self.allowed:
            raise self.NVMLError_NoPermission("Insufficient Permissions")
        self.calls.append((name, *args))

    def nvmlDeviceSetGpuLockedClocks(self, h, lo, hi):
        self._record("gpu_locked", lo, hi)

    def nvmlDeviceSetMemoryLockedClocks(self, h, lo, hi):
        self._record("mem_locked", lo, hi)

    def nvmlDeviceSetApplicationsClocks(self, h, mem, gpu):
        self._record("application", mem, gpu)

    def nvmlDeviceResetGpuLockedClocks(self, h):
        self._record("reset_gpu")

    def nvmlDeviceResetMemoryLockedClocks(self, h):
        raise self.NVMLError_NotSupported("pre-Ampere")


def test_nvml_backend_validates_and_calls_nvml():
    nv = ClockNVML()
    locked = NvmlClockBackend(0, mode="locked", nvml=nv)
    assert locked.available() == {"mem": [877.0, 1593.0], "gpu": [210.0, 900.0, 1410.0]}
    locked.set({"gpu": 900})
    locked.set({"gpu": 600, "mem": 877})
    locked.reset()  # the missing memory reset on older GPUs is tolerated
    assert nv.calls == [
        ("gpu_locked", 900, 900),
        ("gpu_locked", 600, 600),
        ("mem_locked", 877, 877),
        ("reset_gpu",),
    ]
    NvmlClockBackend(0, mode="application", nvml=nv).set({"gpu": 1410})
    assert nv.calls[-1] == ("application", 1593, 1410)
    with pytest.raises(ValueError, match=r"not a supported graphics clock.*\[210, 900, 1410\]"):
        locked.set({"gpu": 1000})
    with pytest.raises(PermissionError, match="needs root"):
        NvmlClockBackend(0, nvml=ClockNVML(allowed=False)).set({"gpu": 900})


def test_dvfs_device_over_a_measured_base_shares_the_space(space):
    from hardware.measure import CPUDevice
    from search.spaces import create_space

    nb = create_space("nb201", channels=4, cells_per_stage=1)
    cpu_space = DvfsSpace("cpu_only", {"cpu": {"levels_mhz": [1000.0, 2000.0]}})
    model = DvfsModel(cpu_space, compute_domain="cpu", memory_domain=None)
    base = CPUDevice(energy=False, warmup=1, min_repeats=3, max_repeats=6, round_size=3)
    dev = DvfsDevice(base, model, setting={"cpu": 1000.0}, space=nb)
    arch = nb.sample(np.random.default_rng(0))
    out = dev.metrics(arch)  # the base builds the network from the shared space
    assert out["latency_ms"] > 0 and out["energy_mj"] is None  # base energy off: none invented
    assert out["settings"]["frequency_setting"] == {"cpu": 1000.0}


def test_fit_recovers_the_model_from_measurements_at_several_settings(space):
    truth = DvfsModel(
        space,
        host_domain="cpu",
        host_share=0.1,
        ridge_intensity=8.0,
        static_power_fraction=0.25,
        v_min_ratio=0.7,
    )
    rng = np.random.default_rng(0)
    settings = [space.sample(rng) for _ in range(12)]
    runs = [truth.predict(10.0, 40.0, st, intensity=12.0) for st in settings]
    model, report = fit_dvfs_model(
        space,
        settings,
        [r["latency_ms"] for r in runs],
        [r["energy_mj"] for r in runs],
        intensity=12.0,
        host_domain="cpu",
    )
    assert report["base_latency_ms"] == pytest.approx(10.0, rel=1e-6)
    assert report["base_energy_mj"] == pytest.approx(40.0, rel=1e-4)
    assert (model.host_share, model.ridge_intensity) == pytest.approx((0.1, 8.0), rel=1e-5)
    assert model.static_power_fraction == pytest.approx(0.25, abs=1e-3)
    assert model.v_min_ratio == pytest.approx(0.7, abs=1e-3)
    assert report["latency_rel_rms"] < 1e-9 and report["energy_rel_rms"] < 1e-4
    with pytest.raises(ValueError, match="more settings than domains"):
        fit_dvfs_model(space, settings[:2], [1.0, 2.0], None, intensity=12.0, host_domain="cpu")
