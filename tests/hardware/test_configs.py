"""Every conf/hardware and conf/dvfs config composes and instantiates into a working object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from hardware.base import Device
from hardware.dvfs import DvfsSpace
from hardware.lut import build_lut
from hardware.measure import CPUDevice
from search.spaces import create_space

CONF = Path(__file__).resolve().parents[2] / "conf"
HARDWARE = sorted(p.stem for p in (CONF / "hardware").glob("*.yaml"))
DVFS = sorted(p.stem for p in (CONF / "dvfs").glob("*.yaml"))


def _compose(group: str, name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=[f"+{group}={name}", *overrides])


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory) -> str:
    space = create_space("nb201", channels=4, cells_per_stage=1)
    arch = space.sample(np.random.default_rng(0))
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    fast = dict(warmup=1, min_repeats=3, max_repeats=6, round_size=3, energy=False)
    build_lut([(arch, space.build_subnet(arch))], CPUDevice(**fast), path)
    return str(path)


def test_all_configs_are_tested():
    assert set(HARDWARE) == {"cpu", "cuda", "lut", "table", "dvfs_jetson_tx2", "dvfs_agx_xavier"}
    assert set(DVFS) == {"jetson_tx2", "agx_xavier"}


@pytest.mark.parametrize("name", HARDWARE)
def test_hardware_config_instantiates_a_device(name, tiny_lut):
    overrides = [f"hardware.path={tiny_lut}"] if name == "lut" else []
    cfg = _compose("hardware", name, *overrides)
    space = create_space("nb201", channels=4, cells_per_stage=1)
    # search.py's call: every device takes the space (the TX2 config brings its own C=16 one).
    kwargs = {} if name == "dvfs_jetson_tx2" else {"space": space}
    device = instantiate(cfg.hardware, **kwargs)
    assert isinstance(device, Device)
    if name in ("cpu", "lut", "table"):
        arch = space.sample(np.random.default_rng(1))
        if name == "cpu":
            device.timing.update(min_repeats=3, max_repeats=6, round_size=3, warmup=1)
            device.energy_window_s = 0.0
        out = device.metrics(arch)
        assert out["latency_ms"] > 0 and out["settings"]["device"] == device.name


def test_tx2_dvfs_device_scales_the_table(tiny_lut):
    device = instantiate(_compose("hardware", "dvfs_jetson_tx2", "hardware.intensity=8.0").hardware)
    frame = device.base.table.frame
    arch = frame.loc[frame["latency_ms_edgegpu"].notna(), "arch_str"].iloc[0]
    top = device.metrics(arch)
    assert top["latency_ms"] == pytest.approx(
        frame.loc[frame["arch_str"] == arch, "latency_ms_edgegpu"].item()
    )
    slow = device.metrics(arch, setting={"gpu": 100.0, "emc": 200.0})
    assert slow["latency_ms"] > top["latency_ms"] and slow["energy_mj"] is not None


@pytest.mark.parametrize("name", DVFS)
def test_dvfs_space_configs_match_hadas_table_ii(name):
    space = instantiate(_compose("dvfs", name).dvfs)
    assert isinstance(space, DvfsSpace) and set(space.sysfs) == {"gpu", "cpu", "emc"}
    # HADAS Table II: (min GHz, max GHz, number of levels) per domain.
    table_ii = {
        "jetson_tx2": {"gpu": (0.1, 1.4, 13), "cpu": (0.3, 2.1, 12), "emc": (0.2, 1.8, 11)},
        "agx_xavier": {"gpu": (0.1, 1.4, 14), "cpu": (0.1, 2.3, 29), "emc": (0.2, 2.1, 9)},
    }[name]
    for dom, (lo, hi, n) in table_ii.items():
        levels = space.levels(dom) / 1000
        assert len(levels) == n
        assert lo - 0.05 <= levels[0] and levels[-1] <= hi + 0.05, dom
