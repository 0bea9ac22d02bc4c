"""Trace replay on a fake clock with fake latencies, the fixed baseline, and trace validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from hardware.runtime.controller import ReactiveController
from hardware.runtime.manager import RuntimeManager
from hardware.runtime.replay import (
    CSV_COLUMNS,
    Phase,
    Trace,
    compare,
    fixed_level,
    load_trace,
    replay,
)
from tests.hardware.test_runtime_toys import FakeClock, FakeLatencyModel, FakeLoad, fake_family

ROOT = Path(__file__).resolve().parents[2]
LAT = [2.0, 4.0, 6.0, 8.0]
ACC = [60.0, 62.0, 64.0, 66.0]


def setup(slowdown=0.5):
    clock = FakeClock()
    model = FakeLatencyModel(clock, {f"L{i}": v for i, v in enumerate(LAT, start=1)})
    fam = fake_family(LAT, ACC)
    load = FakeLoad(model, slowdown=slowdown)

    def make(controlled: bool, level: int | None) -> RuntimeManager:
        ctrl = ReactiveController(LAT, window=5, band=0.15, cooldown=1) if controlled else None
        return RuntimeManager(
            model, fam, "cpu_1t", controller=ctrl, level=level, select_on_target=controlled,
            clock=clock,
        )  # fmt: skip

    return clock, model, fam, load, make


def zeros(i: int) -> torch.Tensor:
    return torch.zeros(1, 3)


PHASES = [
    Phase("loose", 9.0, requests=20),
    Phase("loaded", 10.0, requests=40, load_workers=1),  # 1.5x: level 4 = 12 ms, 3 = 9 ms
    Phase("tight", 5.0, requests=20),
]


def test_replay_rows_columns_and_counts():
    clock, model, fam, load, make = setup()
    res = replay(make(True, None), PHASES, zeros, load=load, name="controller")
    assert len(res.rows) == 80 and [r["request"] for r in res.rows] == list(range(80))
    assert [sum(r["phase"] == p.name for r in res.rows) for p in PHASES] == [20, 40, 20]
    assert load.history == [0, 1, 0] and load.closed == 1
    assert all(set(r) == set(CSV_COLUMNS) for r in res.rows)
    times = [r["time_s"] for r in res.rows]
    assert times == sorted(times) and times[0] == 0.0
    loaded = [r for r in res.rows if r["phase"] == "loaded"]
    # level 4 under load violates; the controller steps down after a 5-request window
    assert loaded[0]["level"] == 4 and loaded[0]["violated"]
    assert loaded[-1]["level"] == 3
    # tight: the table jumps straight to level 2 (4 ms <= 5)
    tight = [r for r in res.rows if r["phase"] == "tight"]
    assert tight[0]["level"] == 2 and tight[0]["switched"]
    s = res.summary
    assert s["requests"] == 80
    assert s["met_share"] == pytest.approx(sum(not r["violated"] for r in res.rows) / 80)
    switched_rows = sum(r["switched"] for r in res.rows)
    assert s["switches"] == len([e for e in res.switches if e["reason"] != "init"])
    assert switched_rows == s["switches"]  # every switch is followed by a served request
    acc = {i + 1: a for i, a in enumerate(ACC)}
    assert s["mean_acc_top1"] == pytest.approx(sum(acc[r["level"]] for r in res.rows) / 80)
    assert [p["requests"] for p in s["phases"]] == [20, 40, 20]


def test_fixed_level_rule_uses_profiles_and_probes_under_load():
    _, _, fam, _, _ = setup()
    levels = fam.levels("cpu_1t")
    # profiled only: the tightest target (5 ms) allows level 2
    assert fixed_level(levels, PHASES, {}) == (2, True)
    loose_loaded = [Phase("a", 9.0, requests=1), Phase("b", 9.0, requests=1, load_workers=1)]
    assert fixed_level(levels, loose_loaded, {}) == (4, True)  # profile says 8 ms: fine
    probed = {1: {1: 3.0, 2: 6.0, 3: 9.5, 4: 12.0}}
    assert fixed_level(levels, loose_loaded, probed) == (2, True)  # under load 3 misses 9 ms
    assert fixed_level(levels, [Phase("x", 1.0, requests=1)], {}) == (1, False)


def test_compare_writes_csvs_switches_summary_and_plot(tmp_path):
    clock, model, fam, load, make = setup()
    trace = Trace.from_dict(
        {
            "name": "t",
            "phases": [
                {"name": "loose", "requests": 30, "target_frac": 1.1},
                {"name": "loaded", "requests": 60, "target_ms": 8.5, "load_workers": 1},
                {"name": "recovered", "requests": 60, "target_ms": 8.5},
            ],
        }
    )
    summary = compare(make, trace, zeros, tmp_path, load=load, probe_requests=5, warmup=1)
    # probe under 1 worker: levels run 1.5x slower -> 3, 6, 9, 12 ms; 8.5 ms -> fixed level 2
    assert summary["fixed_level"] == 2 and summary["fixed_level_feasible"]
    assert summary["phases"][0]["target_ms"] == pytest.approx(2 + 1.1 * 6)
    with (tmp_path / "controller" / "requests.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 150
    fixed_rows = list(csv.DictReader((tmp_path / "fixed" / "requests.csv").open()))
    assert {r["level"] for r in fixed_rows} == {"2"}
    switches = list(csv.DictReader((tmp_path / "controller" / "switches.csv").open()))
    reasons = [s["reason"] for s in switches]
    assert "down" in reasons and "up" in reasons  # stepped down under load and back up after
    c, fx = summary["controller"], summary["fixed"]
    assert fx["switches"] == 0 and fx["met_share"] == 1.0
    assert c["mean_acc_top1"] > fx["mean_acc_top1"]  # more accurate outside the loaded phase
    assert (tmp_path / "replay.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "summary.json").read_text())["trace"] == "t"


def test_seconds_phases_follow_the_clock():
    clock, model, fam, load, make = setup()
    phases = [Phase("a", 100.0, seconds=0.08), Phase("b", 100.0, seconds=0.04, load_workers=1)]
    res = replay(make(False, 4), phases, zeros, load=load)
    # level 4: 8 ms a request -> 10 in 80 ms; loaded 12 ms -> 4 in 40 ms (the 4th crosses it)
    assert [sum(r["phase"] == p for r in res.rows) for p in ("a", "b")] == [10, 4]


def test_load_is_closed_when_the_replay_is_interrupted():
    clock, model, fam, load, make = setup()

    def interrupt(i):
        if i == 25:
            raise KeyboardInterrupt
        return zeros(i)

    with pytest.raises(KeyboardInterrupt):
        replay(make(True, None), PHASES, interrupt, load=load)
    assert load.history == [0, 1] and load.closed == 1 and load.workers == 0


@pytest.mark.parametrize(
    "phase,match",
    [
        ({"requests": 5}, "exactly one of target_ms / target_frac"),
        ({"target_ms": 5, "target_frac": 0.5, "requests": 5}, "exactly one of target_ms"),
        ({"target_ms": 5}, "exactly one of requests / seconds"),
        ({"target_ms": 5, "requests": 0}, "requests must be an int >= 1"),
        ({"target_ms": -1, "requests": 3}, "target_ms must be > 0"),
        ({"target_ms": 5, "requests": 3, "load_workers": -1}, "load_workers must be an int >= 0"),
        ({"target_ms": 5, "requests": 3, "load": 1}, r"unknown keys \['load'\]"),
    ],
)
def test_bad_trace_entries_are_named(phase, match):
    with pytest.raises(ValueError, match=match):
        Trace.from_dict({"phases": [phase]})


@pytest.mark.parametrize("name", ["target_steps", "cpu_load", "tiny"])
def test_shipped_traces_load_and_resolve(name):
    trace = load_trace(ROOT / "conf" / "runtime" / f"{name}.yaml")
    phases = trace.resolve(fake_family(LAT, ACC).levels("cpu_1t"))
    assert trace.name == name and all(p.target_ms > 0 for p in phases)
    if name != "tiny":  # the default traces stay short: < 1,000 requests of a few ms
        assert sum(p.requests for p in phases) <= 1000


def test_controller_yaml_builds_the_controller():
    import hydra
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "conf" / "runtime" / "controller.yaml")
    ctrl = hydra.utils.instantiate(cfg.controller)(profiled_ms=LAT)
    assert isinstance(ctrl, ReactiveController) and ctrl.window == 10
    assert isinstance(cfg.select_on_target, bool)


def test_targets_can_come_from_the_profile_and_bad_sources_are_refused(tmp_path):
    clock, model, fam, _, make = setup()
    load = FakeLoad()  # not coupled to the model: the slowdown below stays
    model.factor = 2.0  # the machine is twice as slow as the profile now
    trace = Trace.from_dict({"name": "t", "phases": [{"requests": 5, "target_frac": 1.0}]})
    probe = compare(make, trace, zeros, tmp_path / "a", load=load, probe_requests=3, warmup=0,
                    targets_from="probe")  # fmt: skip
    assert probe["phases"][0]["target_ms"] == pytest.approx(16.0)  # top level, measured now
    prof = compare(make, trace, zeros, tmp_path / "b", load=load, probe_requests=3, warmup=0)
    assert prof["phases"][0]["target_ms"] == pytest.approx(8.0)  # top level, as profiled
    with pytest.raises(ValueError, match="targets_from must be 'probe' or 'profile'"):
        compare(make, trace, zeros, tmp_path / "c", load=load, targets_from="guess")
