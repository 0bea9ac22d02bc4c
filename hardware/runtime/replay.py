"""Workload trace replay: the runtime manager against a fixed sub-network, on one trace.

A trace is a list of phases, each with a latency target and a competing CPU load (busy worker
processes), lasting a number of requests or seconds: Dynamic-OFA's Fig. 6 (the target steps)
and Fig. 7 (a second application starts) as data. :func:`replay` serves the trace with one
manager and returns one row per request; :func:`compare` replays it twice, with the reactive
controller and with the best single fixed level, and writes both side by side (CSV, switch
events, ``summary.json`` and a plot).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from hardware.runtime.family import Level
from hardware.runtime.manager import RuntimeManager

# One row per request: ``time_s`` since the replay began (at the request's start), ``level`` the
# level that served it, ``switched`` 1 for the first request after a switch, ``violated`` 1 when
# ``latency_ms > target_ms``.
CSV_COLUMNS = (
    "request",
    "time_s",
    "phase",
    "target_ms",
    "latency_ms",
    "level",
    "switched",
    "violated",
)


@dataclass(frozen=True)
class Phase:
    """One stretch of a trace.

    Attributes:
        name: label in the CSV and the plot.
        target_ms: latency target in ms (resolved; see :meth:`Trace.resolve`).
        requests: requests served in the phase (or None with ``seconds``).
        seconds: wall-clock length of the phase (or None with ``requests``).
        load_workers: busy single-thread worker processes competing for the CPU.
    """

    name: str
    target_ms: float
    requests: int | None = None
    seconds: float | None = None
    load_workers: int = 0


@dataclass(frozen=True)
class Trace:
    """A workload trace: phases in order, with targets possibly relative to the ladder.

    Attributes:
        name: the trace's name.
        phases: the raw phase entries (``target_ms`` or ``target_frac``).
        description: what it reproduces.
    """

    name: str
    phases: tuple[dict[str, Any], ...]
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "trace") -> Trace:
        """Validate a trace mapping (see ``conf/runtime/*.yaml``)."""
        phases = data.get("phases")
        if not isinstance(phases, list) or not phases:
            raise ValueError(f"{source}: 'phases' must be a non-empty list, got {phases!r}")
        allowed = {"name", "target_ms", "target_frac", "requests", "seconds", "load_workers"}
        for i, p in enumerate(phases):
            where = f"{source}: phases[{i}]"
            if not isinstance(p, Mapping):
                raise ValueError(f"{where} is not a mapping: {p!r}")
            unknown = sorted(set(p) - allowed)
            if unknown:
                raise ValueError(f"{where} has unknown keys {unknown}; valid: {sorted(allowed)}")
            if ("target_ms" in p) == ("target_frac" in p):
                raise ValueError(f"{where} needs exactly one of target_ms / target_frac: {p}")
            if ("requests" in p) == ("seconds" in p):
                raise ValueError(f"{where} needs exactly one of requests / seconds: {p}")
            if "requests" in p and not (isinstance(p["requests"], int) and p["requests"] >= 1):
                raise ValueError(f"{where}.requests must be an int >= 1, got {p['requests']!r}")
            if "seconds" in p and not float(p["seconds"]) > 0:
                raise ValueError(f"{where}.seconds must be > 0, got {p['seconds']!r}")
            if "target_ms" in p and not float(p["target_ms"]) > 0:
                raise ValueError(f"{where}.target_ms must be > 0, got {p['target_ms']!r}")
            workers = p.get("load_workers", 0)
            if not (isinstance(workers, int) and workers >= 0):
                raise ValueError(f"{where}.load_workers must be an int >= 0, got {workers!r}")
        return cls(
            name=str(data.get("name", source)),
            phases=tuple(dict(p) for p in phases),
            description=str(data.get("description", "")),
        )

    def resolve(
        self, levels: Sequence[Level], latency_ms: Sequence[float] | None = None
    ) -> list[Phase]:
        """The phases with absolute targets.

        ``target_frac`` places the target on the ladder's latency range: 0 is level 1's
        latency, 1 the top level's, values above 1 are looser than the top level needs. It
        keeps a trace meaningful for any family (a real one, an untrained stand-in, another
        width). The range is the profiled one, or ``latency_ms`` (one per level, e.g. measured
        just before the replay, so a machine slower now than at profiling time still gets
        targets its ladder spans).
        """
        lat = [lv.latency_ms for lv in levels] if latency_ms is None else list(latency_ms)
        if len(lat) != len(levels):
            raise ValueError(f"need one latency per level ({len(levels)}), got {len(lat)}")
        lo, hi = min(lat), max(lat)
        out = []
        for i, p in enumerate(self.phases):
            target = (
                float(p["target_ms"])
                if "target_ms" in p
                else lo + float(p["target_frac"]) * (hi - lo)
            )
            if not target > 0:
                raise ValueError(
                    f"phase {i} of {self.name}: target_frac {p['target_frac']} gives "
                    f"{target:g} ms on a ladder of {lo:g}-{hi:g} ms"
                )
            out.append(
                Phase(
                    name=str(p.get("name", f"phase{i}")),
                    target_ms=target,
                    requests=p.get("requests"),
                    seconds=float(p["seconds"]) if "seconds" in p else None,
                    load_workers=int(p.get("load_workers", 0)),
                )
            )
        return out


def load_trace(path: str | Path) -> Trace:
    """Read a trace YAML (``conf/runtime/<trace>.yaml``)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"trace file {str(file)!r} does not exist")
    data = yaml.safe_load(file.read_text())
    if not isinstance(data, Mapping):
        raise ValueError(f"{file} does not hold a mapping with 'phases'")
    return Trace.from_dict(data, source=str(file))


class NoLoad:
    """Stands in for :class:`~hardware.runtime.load.CompetingLoad` when a trace has no load."""

    workers = 0

    def set_workers(self, n: int) -> None:
        if n:
            raise ValueError("NoLoad cannot run load workers")

    def close(self) -> None:
        pass


@dataclass
class ReplayResult:
    """One replay: a row per request, the switch events and the summary."""

    name: str
    rows: list[dict[str, Any]]
    switches: list[dict[str, Any]]
    phases: list[Phase]
    summary: dict[str, Any] = field(default_factory=dict)


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def summarize(
    name: str, rows: list[dict[str, Any]], switches: list[dict[str, Any]], phases, levels
) -> dict[str, Any]:
    """Share of requests meeting the target, mean accuracy served, switches; per phase too."""
    acc = {lv.level: lv.acc_top1 for lv in levels}

    def block(rs: list[dict[str, Any]]) -> dict[str, Any]:
        lat = [r["latency_ms"] for r in rs]
        return {
            "requests": len(rs),
            "met_share": _share([not r["violated"] for r in rs]),
            "mean_acc_top1": statistics.fmean(acc[r["level"]] for r in rs) if rs else None,
            "mean_level": statistics.fmean(r["level"] for r in rs) if rs else None,
            "median_latency_ms": statistics.median(lat) if lat else None,
            "p95_latency_ms": _quantile(lat, 0.95),
        }

    real = [s for s in switches if s["reason"] != "init"]
    per_phase = []
    for p in phases:
        rs = [r for r in rows if r["phase"] == p.name]
        per_phase.append(
            {"name": p.name, "target_ms": p.target_ms, "load_workers": p.load_workers, **block(rs)}
        )
    return {
        "name": name,
        **block(rows),
        "switches": len(real),
        "switch_ms_median": statistics.median(s["switch_ms"] for s in real) if real else None,
        "duration_s": rows[-1]["time_s"] if rows else 0.0,
        "phases": per_phase,
    }


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def replay(
    manager: RuntimeManager,
    phases: Sequence[Phase],
    inputs: Callable[[int], torch.Tensor],
    load: Any = None,
    name: str = "replay",
) -> ReplayResult:
    """Serve the phases with ``manager``; one row per request (see :data:`CSV_COLUMNS`).

    Args:
        manager: the runtime manager (its clock times the requests and the phases).
        phases: resolved phases.
        inputs: request index -> input batch.
        load: the competing load (``set_workers(n)``, ``close()``); None builds a
            :class:`~hardware.runtime.load.CompetingLoad` if any phase has load. It is closed
            at the end, also on an error or KeyboardInterrupt.
        name: the replay's name in the summary.
    """
    if load is None:
        if any(p.load_workers for p in phases):
            from hardware.runtime.load import CompetingLoad

            load = CompetingLoad()
        else:
            load = NoLoad()
    clock = manager.clock
    rows: list[dict[str, Any]] = []
    first_switch = len(manager.switches)
    try:
        start = clock()
        i = 0
        for phase in phases:
            load.set_workers(phase.load_workers)
            manager.set_target(phase.target_ms)
            phase_start, served = clock(), 0
            while (
                served < phase.requests
                if phase.requests is not None
                else clock() - phase_start < phase.seconds
            ):
                t = clock() - start
                _, rec = manager.infer(inputs(i))
                rows.append(
                    {
                        "request": i,
                        "time_s": t,
                        "phase": phase.name,
                        "target_ms": phase.target_ms,
                        "latency_ms": rec.latency_ms,
                        "level": rec.level,
                        "switched": rec.switched,
                        "violated": rec.latency_ms > phase.target_ms,
                    }
                )
                i += 1
                served += 1
    finally:
        load.close()
    switches = [
        {**s.as_dict(), "time_s": s.time_s - start} for s in manager.switches[first_switch:]
    ]
    result = ReplayResult(name=name, rows=rows, switches=switches, phases=list(phases))
    result.summary = summarize(name, rows, switches, phases, manager.levels)
    return result


def probe_levels(
    manager: RuntimeManager,
    inputs: Callable[[int], torch.Tensor],
    load: Any,
    workers: int,
    requests: int = 20,
    per_visit: int = 5,
) -> dict[int, float]:
    """Median latency of every level under ``workers`` load workers: what the best fixed
    level under that load is chosen from, and where ``target_frac`` targets are placed.

    The levels are visited round-robin, ``per_visit`` timed requests (after one untimed) per
    visit, until each has ``requests``: a drift of the machine's load over the probe then
    shifts every level alike instead of whichever was probed last (one level after another, a
    busy 2-core VM ranked a 22 ms level above a 43 ms one).
    """
    if requests < 1 or per_visit < 1:
        raise ValueError(f"requests and per_visit must be >= 1, got {requests}, {per_visit}")
    before = manager.level
    samples: dict[int, list[float]] = {lv.level: [] for lv in manager.levels}
    load.set_workers(workers)
    i = 0
    while any(len(v) < requests for v in samples.values()):
        for lv in manager.levels:
            if len(samples[lv.level]) >= requests:
                continue
            manager.switch(lv.level, reason="manual")
            for k in range(per_visit + 1):
                _, rec = manager.infer(inputs(i))
                i += 1
                if k:
                    samples[lv.level].append(rec.latency_ms)
    manager.switch(before, reason="manual")
    return {level: statistics.median(v[:requests]) for level, v in samples.items()}


def fixed_level(
    levels: Sequence[Level], phases: Sequence[Phase], measured: Mapping[int, Mapping[int, float]]
) -> tuple[int, bool]:
    """The best single fixed level: the most accurate one whose latency meets every phase's
    target, with each phase's latency taken from ``measured[load_workers][level]`` where that
    load was probed, else the profiled latency. Returns ``(level, feasible)``; with no level
    meeting the most constrained phase, level 1 (the fastest) and False.
    """

    def meets(lv: Level) -> bool:
        for p in phases:
            lat = measured.get(p.load_workers, {}).get(lv.level, lv.latency_ms)
            if lat > p.target_ms:
                return False
        return True

    ok = [lv for lv in levels if meets(lv)]
    if not ok:
        return 1, False
    return max(ok, key=lambda lv: (lv.acc_top1, -lv.latency_ms)).level, True


def write_result(result: ReplayResult, out_dir: str | Path) -> dict[str, Path]:
    """``requests.csv``, ``switches.csv`` and ``summary.json`` of one replay under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"requests": out / "requests.csv", "switches": out / "switches.csv"}
    with paths["requests"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in result.rows:
            w.writerow({**r, "switched": int(r["switched"]), "violated": int(r["violated"])})
    cols = [
        "request",
        "time_s",
        "from_level",
        "to_level",
        "reason",
        "switch_ms",
        "set_active_ms",
        "load_bn_ms",
    ]
    with paths["switches"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(result.switches)
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(result.summary, indent=2) + "\n")
    return paths


def plot_replays(results: Sequence[ReplayResult], path: str | Path, title: str = "") -> Path:
    """Latency vs target over time (top) and level over time (bottom), one colour per replay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_lat, ax_lvl) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for k, res in enumerate(results):
        t = [r["time_s"] for r in res.rows]
        c = colors[k % len(colors)]
        s = res.summary
        label = (
            f"{res.name}: {100 * (s['met_share'] or 0):.0f}% met, "
            f"acc {s['mean_acc_top1'] or 0:.2f}%, {s['switches']} switches"
        )
        ax_lat.scatter(t, [r["latency_ms"] for r in res.rows], s=3, color=c, label=label)
        ax_lvl.step(t, [r["level"] for r in res.rows], where="post", color=c, label=res.name)
        ax_lat.step(t, [r["target_ms"] for r in res.rows], where="post", color="k", ls="--", lw=1)
        starts = [
            r for prev, r in zip([None, *res.rows], res.rows, strict=False)
            if prev is None or prev["phase"] != r["phase"]
        ]  # fmt: skip
        for r in starts[1:]:  # phase boundaries, in each run's own time
            for ax in (ax_lat, ax_lvl):
                ax.axvline(r["time_s"], color=c, ls=":", lw=0.8)
        if k == 0:
            for r in starts:
                ax_lvl.annotate(r["phase"], (r["time_s"], 0), xycoords=("data", "axes fraction"),
                                fontsize=7, xytext=(2, 2), textcoords="offset points")  # fmt: skip
    ax_lat.plot([], [], color="k", ls="--", lw=1, label="target")
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.legend(fontsize=8, loc="upper right")
    ax_lvl.set_ylabel("level (1 = fastest)")
    ax_lvl.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_lvl.set_xlabel("time (s)")
    ax_lvl.legend(fontsize=8, loc="upper right")
    if title:
        ax_lat.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def compare(
    make_manager: Callable[[bool, int | None], RuntimeManager],
    trace: Trace,
    inputs: Callable[[int], torch.Tensor],
    out_dir: str | Path,
    load: Any = None,
    probe_requests: int = 20,
    warmup: int = 3,
    targets_from: str = "profile",
) -> dict[str, Any]:
    """Replay ``trace`` with the controller and with the best fixed level; write both.

    Args:
        make_manager: ``(controlled, level) -> RuntimeManager``: with ``controlled`` the
            manager has the reactive controller and the lookup-table pick on every target;
            without, it stays at ``level``.
        trace: the trace.
        inputs: request index -> input batch.
        out_dir: where ``controller/``, ``fixed/``, ``replay.png`` and ``summary.json`` go.
        load: the competing load (None: a :class:`CompetingLoad` when the trace has load).
        probe_requests: requests per level when probing a load level for the fixed baseline.
        warmup: untimed requests per level before the replays (warm caches and allocator).
        targets_from: ``"profile"``: ``target_frac`` is placed on the family's profiled
            latencies, the ones the lookup table decides on (a family profiled on a busier
            machine otherwise gets targets its table finds infeasible for every level but the
            first); ``"probe"``: on the ladder's latencies measured just before the replays
            (without load).

    Returns:
        The comparison summary (also written to ``summary.json``).
    """
    if targets_from not in ("probe", "profile"):
        raise ValueError(f"targets_from must be 'probe' or 'profile', got {targets_from!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if load is None:
        if any(int(p.get("load_workers", 0)) for p in trace.phases):
            from hardware.runtime.load import CompetingLoad

            load = CompetingLoad()
        else:
            load = NoLoad()
    try:
        probe_manager = make_manager(False, None)
        levels = probe_manager.levels
        for lv in levels:  # warm every path once so no replay pays a cold first run
            probe_manager.switch(lv.level, reason="manual")
            for i in range(warmup):
                probe_manager.infer(inputs(i))
        workers = {int(p.get("load_workers", 0)) for p in trace.phases}
        measured = {
            w: probe_levels(probe_manager, inputs, load, w, probe_requests)
            for w in sorted(workers | {0})
        }
        quiet = [measured[0][lv.level] for lv in levels]
        phases = trace.resolve(levels, quiet if targets_from == "probe" else None)
        load.set_workers(0)
        level, feasible = fixed_level(levels, phases, measured)
        t0 = time.perf_counter()
        controlled = replay(make_manager(True, None), phases, inputs, load, name="controller")
        fixed = replay(make_manager(False, level), phases, inputs, load, name="fixed")
        wall_s = time.perf_counter() - t0
    finally:
        load.close()
    paths = {
        "controller": write_result(controlled, out / "controller"),
        "fixed": write_result(fixed, out / "fixed"),
    }
    plot = plot_replays(
        [controlled, fixed],
        out / "replay.png",
        title=f"{trace.name}: reactive controller vs best fixed level {level}",
    )
    summary = {
        "trace": trace.name,
        "description": trace.description,
        "phases": [vars(p) for p in phases],
        "fixed_level": level,
        "fixed_level_feasible": feasible,
        "fixed_level_rule": (
            "the most accurate level whose latency meets every phase's target, each level's "
            "latency in a phase being the median of a probe just before the replays under "
            "that phase's load (the best single level in hindsight)"
        ),
        "targets_from": targets_from,
        "probe_ms_by_load_workers": {str(w): m for w, m in measured.items()},
        "levels": [lv.as_dict() for lv in levels],
        "controller": controlled.summary,
        "fixed": fixed.summary,
        "replay_wall_s": wall_s,
        "files": {
            "plot": str(plot),
            **{f"{k}_{n}": str(p) for k, ps in paths.items() for n, p in ps.items()},
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
