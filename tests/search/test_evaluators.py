"""Evaluators: table lookup with clear errors, pluggable devices, proxies, predictors."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from search.algorithms import nsga2
from search.evaluators import (
    CombinedEvaluator,
    FunctionEvaluator,
    PredictorEvaluator,
    ProxyEvaluator,
    TableEvaluator,
)
from search.evaluators.function import function_fingerprint
from search.objectives import Constraint, Objective, parse_constraints, parse_objectives
from search.runner import run_search
from search.spaces import create_space
from search.tactics import FullSearch
from tests.search.test_api import OBJECTIVES, ToySpace, toy_metrics

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
BEST += "nor_conv_3x3~2|"  # the best CIFAR-10 cell
ACC = Objective("acc_top1", "max")


@pytest.fixture(scope="module")
def table() -> TableEvaluator:
    return TableEvaluator(metric_columns={"acc_top1": "acc_cifar10_test"})


def test_table_lookup_maps_metrics_and_devices(table):
    lat = Objective("latency_ms", "min", "edgegpu")
    row = table.table.query(BEST)
    got = table.evaluate(BEST, [ACC, lat, Objective("energy_mj", device="edgegpu")])
    assert got == {
        "acc_top1": row["acc_cifar10_test"],
        "latency_ms_edgegpu": row["latency_ms_edgegpu"],
        "energy_mj_edgegpu": row["energy_mj_edgegpu"],
    }
    missing = table.table.frame.loc[table.table.frame["latency_ms_edgegpu"].isna(), "arch_str"]
    assert table.evaluate(missing.iloc[0], [lat]) == {"latency_ms_edgegpu": None}  # NaN: unmeasured
    settings = table.settings([ACC, lat])
    assert settings["sources"] == {"acc_top1": "acc_cifar10_test", "latency_ms_edgegpu": lat.key}


def test_bad_names_get_errors_naming_the_valid_ones(table):
    with pytest.raises(KeyError, match="unknown device 'tx9'.*'edgegpu'.*'pixel3'"):
        table.check([ACC, Objective("latency_ms", device="tx9")], [])
    with pytest.raises(KeyError, match="unknown metric 'acc' without a device.*'acc_top1'"):
        table.check([Objective("acc", "max")], [])
    with pytest.raises(KeyError, match="unknown metric 'speed' on device 'pixel3'"):
        table.check([Objective("speed", device="pixel3")], [])
    with pytest.raises(ValueError, match="mode 'fast'.*'min', 'max'"):
        Objective("latency_ms", "fast")
    with pytest.raises(ValueError, match="two or more objectives"):
        parse_objectives([{"metric": "acc_top1", "mode": "max"}])
    with pytest.raises(ValueError, match="operator '<'.*'<='"):
        parse_constraints([{"metric": "latency_ms", "device": "pixel3", "op": "<", "value": 3}])
    with pytest.raises(KeyError, match="maps 'acc_top1' to unknown column 'acc_mnist'"):
        TableEvaluator(metric_columns={"acc_top1": "acc_mnist"})


def test_infeasible_constraint_is_a_clear_error(table):
    lat = Objective("latency_ms", "min", "pixel3")
    with pytest.raises(ValueError, match="latency_ms_pixel3 <= 0.001 is infeasible.*ranges over"):
        table.check([ACC, lat], [Constraint("latency_ms", "<=", 0.001, "pixel3")])
    with pytest.raises(ValueError, match="acc_top1 >= 99 is infeasible"):
        table.check([ACC, lat], [Constraint("acc_top1", ">=", 99)])
    table.check([ACC, lat], [Constraint("latency_ms", "<=", 10, "pixel3")])  # feasible: no error


class FakeDevice:
    """A measured device: the Device protocol's metrics(arch, model) -> dict."""

    name = "fake"
    settings = {"batch_size": 1, "threads": 1}

    def __init__(self) -> None:
        self.models = []

    def metrics(self, arch, model=None):
        self.models.append(model)
        return {"latency_ms": float(len(arch)), "energy_mj": None}


def test_a_device_plugs_in_as_a_metric_source(table):
    device = FakeDevice()
    ev = TableEvaluator(
        metric_columns={"acc_top1": "acc_cifar10_test"},
        devices={"fake": device},
        model_builder=lambda arch: f"net:{arch}",
    )
    lat = Objective("latency_ms", "min", "fake")
    ev.check([ACC, lat], [])
    got = ev.evaluate(BEST, [ACC, lat])
    assert got["latency_ms_fake"] == float(len(BEST)) and got["acc_top1"] > 94
    assert device.models == [f"net:{BEST}"]
    assert ev.settings([lat])["sources"]["latency_ms_fake"]["settings"] == device.settings
    assert "fake" in ev.devices_of("latency_ms")


def test_proxy_flops_match_a_hand_count():
    space = create_space("nb201", channels=16, cells_per_stage=1)
    proxy = ProxyEvaluator(space)
    flops = Objective("flops_m")
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    conv1x1 = space.decode([2] * 6)  # nor_conv_1x1 on every edge
    delta = proxy.evaluate(conv1x1, [flops])["flops_m"] - proxy.evaluate(none, [flops])["flops_m"]
    # 6 edges of 1x1 convs per cell, one cell per stage at C=16 @32x32, 32 @16x16, 64 @8x8,
    # 2 FLOPs per multiply-add (BN and ReLU are not counted by FlopCounterMode)
    expected = 6 * 2 * (16 * 16 * 32 * 32 + 32 * 32 * 16 * 16 + 64 * 64 * 8 * 8) / 1e6
    assert delta == pytest.approx(expected)
    params = proxy.evaluate(conv1x1, [Objective("params_m")])["params_m"]
    assert params == pytest.approx(
        sum(p.numel() for p in space.build_subnet(conv1x1).parameters()) / 1e6
    )
    with pytest.raises(KeyError, match="cannot serve 'latency_ms_pixel3'.*'flops_m'"):
        proxy.check([Objective("latency_ms", device="pixel3")], [])


def test_combined_evaluator_takes_each_metric_from_the_part_that_serves_it(table):
    space = create_space("nb201", channels=4, cells_per_stage=1)
    combined = CombinedEvaluator([table, ProxyEvaluator(space)])
    objs = [ACC, Objective("flops_m")]
    combined.check(objs, [])
    got = combined.evaluate(BEST, objs)
    assert got["acc_top1"] == table.evaluate(BEST, [ACC])["acc_top1"] and got["flops_m"] > 0
    assert combined.name == "validation:nb201_table+proxy:params_flops"
    with pytest.raises(KeyError, match="no evaluator serves.*speed.*nb201_table.*params_flops"):
        combined.check([Objective("speed")], [])


def test_predictor_evaluator_fits_every_metric_and_skips_unmeasured():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (80, 6))
    y = X.sum(1).astype(float)
    y_nan = y.copy()
    y_nan[:10] = np.nan
    pred = PredictorEvaluator([5] * 6, kinds={"latency_ms": "ridge"}, default="svr")
    pred.fit(X, {"acc_top1": y, "latency_ms_pixel3": y_nan})
    assert pred.kind_of("latency_ms_pixel3") == "ridge" and pred.kind_of("acc_top1") == "svr"
    P = pred.predict(X[:5], ["latency_ms_pixel3", "acc_top1"])
    np.testing.assert_allclose(P[:, 0], y[:5], atol=0.5)
    with pytest.raises(KeyError, match="no fitted predictor for \\['x'\\]"):
        pred.predict(X, ["x"])


def _offset_error(offset: float):
    """An evaluation function closing over a value (like a checkpoint path or version)."""

    def evaluate(arch):
        metrics = toy_metrics(arch)
        return {**metrics, "error": metrics["error"] + offset}

    return evaluate


def _cost_only_changed(arch):
    return {**toy_metrics(arch), "cost_ms": 0.0}


def test_function_evaluations_are_shared_by_the_same_function_only(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.sqlite"

    def served(fn, study, **kw):
        result = run_search(ToySpace(), OBJECTIVES, FunctionEvaluator(fn, **kw), budget=20,
                            tactic=FullSearch(functools.partial(nsga2, pop_size=10)),
                            archive=url, study=study)  # fmt: skip
        return sum(not p for p in result.paid)

    assert served(toy_metrics, "a") == 0
    assert served(toy_metrics, "b") >= 10  # same function, same first population: shared
    assert served(_cost_only_changed, "c") == 0  # another function: nothing shared
    assert served(_offset_error(1.0), "d") == 0
    assert served(_offset_error(2.0), "e") == 0  # same code, another closed-over value
    assert served(_offset_error(1.0), "f") >= 10
    assert served(toy_metrics, "g", settings={"dataset": "v2"}) == 0  # user settings count
    # the fingerprint is stable across processes (a resumed or second worker shares entries)
    code = ("from search.evaluators.function import function_fingerprint as f;"
            "from tests.search.test_api import toy_metrics as t; print(f(t)['code'])")  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=env)  # fmt: skip
    assert other.stdout.strip() == function_fingerprint(toy_metrics)["code"]
    shared = FunctionEvaluator(toy_metrics, fingerprint=False).settings([ACC])
    assert shared == FunctionEvaluator(_cost_only_changed, fingerprint=False).settings([ACC])


class SizedDevice(FakeDevice):
    """A measuring device whose networks come from ``space`` (like hardware.measure's)."""

    def __init__(self, space) -> None:
        super().__init__()
        self.space = space


def test_table_accuracy_with_latency_of_another_network_size_is_refused():
    lat = Objective("latency_ms", "min", "fake")
    shallow = create_space("nb201", cells_per_stage=1)

    def table(space, **kw):
        return TableEvaluator(metric_columns={"acc_top1": "acc_cifar10_test"},
                              devices={"fake": SizedDevice(space)}, **kw)  # fmt: skip

    table(create_space("nb201")).check([ACC, lat], [])  # the table's own size: fine
    match = (r"different sizes: acc_top1 from the NAS-Bench-201 table at channels=16, "
             r"cells_per_stage=5; latency_ms_fake from device 'fake' at channels=16, "
             r"cells_per_stage=1.*allow_size_mismatch=true")  # fmt: skip
    with pytest.raises(ValueError, match=match):
        table(shallow).check([ACC, lat], [])
    with pytest.warns(UserWarning, match="different sizes"):
        table(shallow, allow_size_mismatch=True).check([ACC, lat], [])
    proxy = CombinedEvaluator([TableEvaluator(metric_columns={"acc_top1": "acc_cifar10_test"}),
                               ProxyEvaluator(create_space("nb201", channels=8))])  # fmt: skip
    with pytest.warns(UserWarning, match="params_m from the proxy's network at channels=8"):
        proxy.check([ACC, Objective("params_m", "min")], [])  # counts keep their ranking
    with_device = CombinedEvaluator([table(shallow), ProxyEvaluator(create_space("nb201"))])
    with pytest.raises(ValueError, match="latency_ms_fake from device 'fake'"):
        with_device.check([ACC, lat], [])  # a part sees all its targets at once
