"""Bundled NAS-Bench-201 table and the official-file adapter."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from search.benchmarks import NB201Table
from search.benchmarks.nb201 import OFFICIAL_ACCURACIES, official_frame


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table.bundled()


def test_bundled_table_is_the_real_data(table, shared_data):
    with gzip.open(shared_data / "nb201" / "nb201_benchmark.csv.gz") as f:
        original = pd.read_csv(f)
    pd.testing.assert_frame_equal(table.frame, original)


def test_known_values_and_not_measured_is_none(table):
    assert len(table) == 15625
    best = table.frame["acc_cifar10_test"].idxmax()
    assert table.frame.at[best, "nb201_index"] == 6111
    assert table.frame.at[best, "acc_cifar10_test"] == pytest.approx(94.37, abs=0.01)
    missing = table.frame["latency_ms_edgegpu"].isna()
    assert missing.sum() == 15625 - 12554
    arch = table.frame.loc[missing, "arch_str"].iloc[0]
    assert table.query(arch, ["latency_ms_edgegpu"]) == {"latency_ms_edgegpu": None}
    assert np.isnan(table.values([arch], "latency_ms_edgegpu")[0])


def test_device_columns_and_clear_errors(table):
    assert {"edgegpu", "pixel3", "raspi4", "1080ti_1"} <= set(table.devices)
    assert table.column("latency_ms", "pixel3") == "latency_ms_pixel3"
    with pytest.raises(KeyError, match="unknown device 'pixel9'"):
        table.column("latency_ms", "pixel9")
    with pytest.raises(KeyError, match="no column 'acc_mnist'"):
        table.values([table.arch_of(0)], "acc_mnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NB201Table.load("/nonexistent/NAS-Bench-201-v1_1-096897.pth")


class FakeAPI:
    """Duck-typed stand-in for ``NASBench201API`` with two architectures."""

    archs = [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    ]

    def __len__(self):
        return 2

    def arch(self, index):
        return self.archs[index]

    def get_more_info(self, index, dataset, hp, is_random):
        assert hp == "200" and is_random is False  # mean over seeds, full schedule
        if dataset == "ImageNet16-120" and index == 0:
            raise ValueError("not trained")
        base = {"cifar10": 90, "cifar100": 70, "ImageNet16-120": 40, "cifar10-valid": 88}[dataset]
        return {"test-accuracy": base + index, "valid-accuracy": base - 1 + index}


def test_official_adapter_maps_every_accuracy_column():
    frame = official_frame(FakeAPI())
    table = NB201Table(frame, source="fake")
    assert set(OFFICIAL_ACCURACIES) <= set(table.columns)
    best = FakeAPI.archs[1]
    assert table.query(best, ["acc_cifar10_test", "acc_cifar10valid_valid"]) == {
        "acc_cifar10_test": 91.0,
        "acc_cifar10valid_valid": 88.0,
    }
    assert table.query(FakeAPI.archs[0], ["acc_imagenet16_120_test"]) == {
        "acc_imagenet16_120_test": None
    }
