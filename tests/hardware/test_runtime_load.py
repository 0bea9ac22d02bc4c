"""The competing CPU load: workers start busy, follow the requested count and never linger."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from hardware.runtime.load import CompetingLoad
from hardware.runtime.manager import RuntimeManager
from hardware.runtime.replay import Phase, replay
from tests.hardware.test_runtime_toys import FakeClock, FakeLatencyModel, fake_family

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def alive(pid: int) -> bool:
    """A running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_workers_burn_cpu_follow_the_count_and_are_stopped():
    load = CompetingLoad(matrix_size=64)
    try:
        load.set_workers(2)
        pids = load.pids
        assert len(pids) == 2 and all(alive(p) for p in pids)
        before = [cpu_ticks(p) for p in pids]
        time.sleep(0.5)
        assert all(cpu_ticks(p) > b for p, b in zip(pids, before, strict=True))  # busy
        load.set_workers(1)
        assert load.pids == pids[:1] and not alive(pids[1])
    finally:
        load.close()
    assert load.workers == 0 and not any(alive(p) for p in pids)


def test_an_error_inside_the_block_still_stops_the_workers():
    with pytest.raises(RuntimeError, match="boom"), CompetingLoad(matrix_size=64) as load:
        load.set_workers(1)
        pids = load.pids
        raise RuntimeError("boom")
    assert not any(alive(p) for p in pids)


def test_replay_starts_load_per_phase_and_leaves_no_process_behind():
    clock = FakeClock()
    model = FakeLatencyModel(clock, {"L1": 1.0})
    mgr = RuntimeManager(model, fake_family([1.0], [50.0]), "cpu_1t", clock=clock)
    load = CompetingLoad(matrix_size=64)
    seen: list[list[int]] = []

    def inputs(i):
        seen.append(load.pids)
        if i == 7:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the loaded phase
        return torch.zeros(1, 3)

    phases = [Phase("quiet", 10.0, requests=3), Phase("busy", 10.0, requests=10, load_workers=1)]
    with pytest.raises(KeyboardInterrupt):
        replay(mgr, phases, inputs, load=load)
    assert seen[0] == [] and len(seen[5]) == 1
    assert load.workers == 0 and not alive(seen[5][0])
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    if children.exists():
        assert str(seen[5][0]) not in children.read_text().split()


def test_bad_worker_count_is_refused():
    with pytest.raises(ValueError, match="must be >= 0, got -1"):
        CompetingLoad().set_workers(-1)
