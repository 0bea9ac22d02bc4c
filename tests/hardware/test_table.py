"""Benchmark-table device: real values, 'not measured' stays None, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.base import Device
from hardware.table import TableDevice
from search.benchmarks import NB201Table


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table.bundled()


@pytest.fixture(scope="module")
def edgegpu(table) -> TableDevice:
    return TableDevice(table, "edgegpu")


def test_values_come_from_the_table(edgegpu):
    frame = edgegpu.table.frame
    row = frame[frame["latency_ms_edgegpu"].notna()].iloc[7]
    out = edgegpu.metrics(row["arch_str"])
    assert isinstance(edgegpu, Device)
    assert out["latency_ms"] == row["latency_ms_edgegpu"]
    assert out["energy_mj"] == row["energy_mj_edgegpu"]
    assert out["power_w"] == pytest.approx(row["energy_mj_edgegpu"] / row["latency_ms_edgegpu"])
    assert (
        out["settings"]["device"] == "table:edgegpu"
        and "HW-NAS-Bench" in out["settings"]["release"]
    )


def test_not_measured_is_none_with_reason(edgegpu):
    frame = edgegpu.table.frame
    arch = frame.loc[frame["latency_ms_edgegpu"].isna(), "arch_str"].iloc[0]
    out = edgegpu.metrics(arch)
    assert out["latency_ms"] is None and out["energy_mj"] is None and out["power_w"] is None
    assert "not measured on edgegpu" in out["latency_ms_reason"]


def test_latency_only_device_and_batch_size(table):
    dev = TableDevice(table, "1080ti_32")
    arch = dev.table.arch_of(123)
    out = dev.metrics(arch)
    assert out["latency_ms"] == pytest.approx(
        float(dev.table.values([arch], "latency_ms_1080ti_32")[0])
    )
    assert out["energy_mj"] is None and "no energy column" in out["energy_mj_reason"]
    assert out["settings"]["batch_size"] == 32
    assert TableDevice(table, "essential_ph_1").metrics(arch)["settings"]["batch_size"] is None
    assert not np.isnan(out["latency_ms"])


def test_unknown_device_lists_valid_ones(table):
    with pytest.raises(KeyError, match=r"unknown table device 'pixel9'.*pixel3"):
        TableDevice(table, "pixel9")
    with pytest.raises(ValueError, match="malformed"):
        TableDevice(table, "pixel3").metrics("|conv~0|")
