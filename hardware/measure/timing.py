"""The timing protocol: warm up, time in rounds, stop once the median of round medians settles.

:func:`time_until_stable` is shared by the CPU and CUDA devices and by the LUT's per-op timing;
:class:`TimingStats` is what it reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class TimingStats:
    """Summary of repeated single-call timings in milliseconds.

    ``median_ms`` is the protocol's estimate (median of per-round medians); ``iqr_ms``,
    ``mean_ms`` and ``std_ms`` describe all samples.
    """

    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    count: int
    stable: bool

    def as_metrics(self, prefix: str = "latency") -> dict[str, Any]:
        """``latency_ms`` (the median) and its spread, as result entries."""
        d = asdict(self)
        return {
            f"{prefix}_ms": d["median_ms"],
            f"{prefix}_iqr_ms": d["iqr_ms"],
            f"{prefix}_mean_ms": d["mean_ms"],
            f"{prefix}_std_ms": d["std_ms"],
            f"{prefix}_count": d["count"],
            f"{prefix}_stable": d["stable"],
        }


def summarize(samples_ms: np.ndarray, stable: bool, median_ms: float | None = None) -> TimingStats:
    """Median, IQR, mean and std of timing samples.

    Args:
        samples_ms: the timed samples.
        stable: whether the protocol's estimate had settled.
        median_ms: the protocol's robust estimate (median of round medians) to report as the
            median; None takes the median of the samples.
    """
    s = np.asarray(samples_ms, dtype=float)
    q25, q50, q75 = np.percentile(s, [25, 50, 75])
    return TimingStats(
        median_ms=float(q50 if median_ms is None else median_ms),
        iqr_ms=float(q75 - q25),
        mean_ms=float(s.mean()),
        std_ms=float(s.std(ddof=1)) if len(s) > 1 else 0.0,
        count=len(s),
        stable=stable,
    )


def time_until_stable(
    timed_call: Callable[[], float],
    warmup: int = 10,
    min_repeats: int = 100,
    max_repeats: int = 5000,
    round_size: int = 20,
    rel_tol: float = 0.01,
    max_seconds: float = 30.0,
    min_time_s: float = 1.0,
    stable_rounds: int = 3,
    max_warmup_rounds: int = 20,
) -> TimingStats:
    """Time ``timed_call`` (which returns the elapsed ms of one call) until its median settles.

    The protocol, in three phases:

    1. Warm-up: ``warmup`` untimed calls, then further warm-up rounds of ``round_size`` calls
       until ``stable_rounds`` rounds in a row fail to beat the fastest so far by ``rel_tol``
       and at least ``min_time_s`` has passed (allocator, thread pool, caches, lazy
       initialisation, clock ramp-up; at most ``max_warmup_rounds`` and half of
       ``max_seconds``).
    2. Timed rounds of ``round_size`` calls. The estimate is the median of the per-round
       medians, so a round hit by a burst of interference (another process, an interrupt
       storm) shifts it by at most one rank.
    3. Stop once at least ``min_repeats`` samples and ``min_time_s`` seconds of timed calls are
       in and the estimate has stayed within ``rel_tol`` (relative) over the last
       ``stable_rounds`` rounds; or at ``max_repeats`` samples / ``max_seconds`` wall-clock,
       where the result says whether it had settled.

    A single "moved < 1% since the last round" check, as this function used before, stops
    after 2-3 rounds on a median that merely paused (30-80 samples), which gave a 27% spread
    of 10 repeated measurements on a quiet Xeon; the minimum measuring time and the multi-round
    window are what make repeated measurements agree.

    Args:
        timed_call: runs the workload once and returns its duration in ms.
        warmup: untimed calls first.
        min_repeats: samples before the stopping rule is checked.
        max_repeats: hard cap on samples.
        round_size: samples per round (one per-round median).
        rel_tol: relative band the estimate must stay in over ``stable_rounds`` rounds.
        max_seconds: wall-clock cap on the whole measurement (warm-up rounds stop at half).
        min_time_s: timed seconds (sum of the samples) before the stopping rule is checked.
        stable_rounds: consecutive rounds over which the estimate must stay within ``rel_tol``.
        max_warmup_rounds: cap on the drift-driven warm-up rounds.
    """
    if min_repeats < 1 or max_repeats < min_repeats or round_size < 1 or stable_rounds < 1:
        raise ValueError(
            f"need 1 <= min_repeats <= max_repeats, round_size >= 1 and stable_rounds >= 1, "
            f"got min_repeats={min_repeats}, max_repeats={max_repeats}, "
            f"round_size={round_size}, stable_rounds={stable_rounds}"
        )
    if warmup < 0 or min_time_s < 0 or max_warmup_rounds < 0:
        raise ValueError(
            f"warmup, min_time_s and max_warmup_rounds must be >= 0, got {warmup}, "
            f"{min_time_s}, {max_warmup_rounds}"
        )
    t0 = time.perf_counter()
    for _ in range(warmup):
        timed_call()
    # Warm only once ``stable_rounds`` rounds in a row fail to beat the fastest round so far:
    # a single noisy round must not end the warm-up while timings are still falling (a cold
    # first measurement in a fresh process ran 35% slow at 2 threads with a one-round rule).
    best, flat, warm_ms = None, 0, 0.0
    for _ in range(max_warmup_rounds):
        batch = [timed_call() for _ in range(round_size)]
        warm_ms += sum(batch)
        median = float(np.median(batch))
        if best is not None and median >= best * (1 - rel_tol):
            flat += 1
            if flat >= stable_rounds and warm_ms >= min_time_s * 1e3:
                break  # no longer getting faster, and warmed for as long as we will measure
        else:
            flat = 0
        if time.perf_counter() - t0 > max_seconds / 2:
            break  # leave the timed phase at least half of the budget
        best = median if best is None else min(best, median)

    samples: list[float] = []
    round_medians: list[float] = []
    estimates: list[float] = []
    while True:
        batch = [timed_call() for _ in range(round_size)]
        samples.extend(batch)
        round_medians.append(float(np.median(batch)))
        estimates.append(float(np.median(round_medians)))
        window = estimates[-(stable_rounds + 1) :]
        settled = len(window) == stable_rounds + 1 and (
            max(window) - min(window) <= rel_tol * estimates[-1]
        )
        enough = len(samples) >= min_repeats and sum(samples) >= min_time_s * 1e3
        if settled and enough:
            return summarize(np.array(samples), stable=True, median_ms=estimates[-1])
        if len(samples) >= max_repeats or time.perf_counter() - t0 > max_seconds:
            return summarize(np.array(samples), stable=settled, median_ms=estimates[-1])


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, restoring the previous count."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
