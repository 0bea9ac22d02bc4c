"""Dynamic-OFA's reactive controller (section 3.4, case 2), with a hysteresis step back up.

The paper's rule: the mean latency over a sliding window, computed every 10 inputs; while it
violates the constraint, step one level down, and re-check on a fresh window. Here the window
holds the last ``window`` latencies and a decision is taken every ``stride`` requests
(``stride = window``, the default, is the paper's "every 10 images"; ``stride = 1`` decides on
every request, which tests the band far more often and so needs a wider one). The paper never
steps up again, so one transient burst of load costs accuracy for good. This controller adds a
step up that does not oscillate:

* **Down**: the window mean exceeds the target (``mean > target_ms``) and the level is above 1:
  step one level down (the paper's rule).
* **Up**: the window mean is below ``target_ms * (1 - band)`` AND the next level's *expected*
  latency is below ``target_ms * (1 - band)`` too, where expected = the next level's profiled
  latency scaled by the current level's observed/profiled ratio (``mean / profiled[current]``).
  The ratio carries the present slowdown (competing load, clock) over to the next level.
* **Inside the band** (``target * (1 - band) <= mean <= target``): nothing changes.
* **Cool-down**: after every switch, the window is emptied and the next ``cooldown`` requests
  are neither recorded nor decided on (the first inferences of a new path run on cold caches),
  so a decision always rests on ``window`` requests of the level that is active now.
* **Failed probe back-off**: if the first full window after a step up violates the target (the
  ratio did not carry over: the load hit the bigger level harder), the controller steps back
  down and blocks that step up for ``probe_backoff`` requests, doubling on every repeat; a
  change of target clears the blocks.

Why this does not oscillate: while the slowdown ratio ``r`` holds, a step up to level L+1 is
taken only if ``r * p[L+1] < T (1 - band)``, so the new window's mean is expected ``band * T``
below the down threshold ``T``; and after a step down from L (``r * p[L] > T``) the step back
up to L would need ``r * p[L] < T (1 - band)``, which contradicts it. A cycle needs the ratio to
change by more than the band, i.e. the environment to change; noise inside the band never
switches. The back-off bounds the cost when the ratio does not carry over between levels.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """The controller's answer to one observed latency.

    Attributes:
        level: the level to run next (the current one when nothing changes).
        reason: ``"down"``, ``"up"`` or None (no change).
        window_mean_ms: the window's mean latency (None while the window is filling).
        expected_ms: the next level's expected latency when a step up was considered.
    """

    level: int
    reason: str | None = None
    window_mean_ms: float | None = None
    expected_ms: float | None = None


class ReactiveController:
    """Sliding-window latency controller over a ladder of levels (1 = fastest).

    Args:
        profiled_ms: each level's profiled latency, level 1 first (for the step-up estimate).
        window: inputs in the sliding window (the paper: 10).
        band: relative hysteresis band under the target, in (0, 1): step up only when both the
            window mean and the next level's expected latency are below ``target * (1 - band)``.
        cooldown: requests after a switch that are neither recorded nor decided on.
        probe_backoff: requests a failed step up stays blocked (doubles on each repeat).
        step_up: False gives the paper's controller (only ever steps down).
        stride: requests between decisions once the window is full (None: ``window``).
    """

    def __init__(
        self,
        profiled_ms: Sequence[float],
        window: int = 10,
        band: float = 0.15,
        cooldown: int = 5,
        probe_backoff: int = 50,
        step_up: bool = True,
        stride: int | None = None,
    ) -> None:
        if len(profiled_ms) < 1:
            raise ValueError("profiled_ms needs one latency per level, got none")
        if not all(math.isfinite(p) and p > 0 for p in profiled_ms):
            raise ValueError(f"profiled latencies must be > 0, got {list(profiled_ms)}")
        if window < 1:
            raise ValueError(f"window must be >= 1 request, got {window}")
        if not 0.0 <= band < 1.0:
            raise ValueError(f"band must be in [0, 1), got {band}")
        if cooldown < 0 or probe_backoff < 0:
            raise ValueError(
                f"cooldown and probe_backoff must be >= 0, got {cooldown}, {probe_backoff}"
            )
        self.profiled_ms = [float(p) for p in profiled_ms]
        self.window, self.band, self.cooldown = window, band, cooldown
        self.probe_backoff, self.step_up = probe_backoff, step_up
        self.stride = window if stride is None else stride
        if not 1 <= self.stride <= window:
            raise ValueError(f"stride must be in 1..window ({window}), got {stride}")
        self._since = 0  # samples since the last decision
        self.top = len(self.profiled_ms)
        self._samples: deque[float] = deque(maxlen=window)
        self._skip = 0
        self._count = 0
        self._target: float | None = None
        self._probe: int | None = None  # level just stepped up to, until its first full window
        self._blocked_until: dict[int, int] = {}
        self._backoff: dict[int, int] = {}

    def settings(self) -> dict[str, float | int | bool]:
        """The controller's configuration, for results."""
        return {
            "window": self.window,
            "band": self.band,
            "cooldown": self.cooldown,
            "probe_backoff": self.probe_backoff,
            "step_up": self.step_up,
            "stride": self.stride,
        }

    def on_switch(self, level: int, reason: str | None) -> None:
        """A switch to ``level`` happened (by this controller or another policy): start afresh."""
        self._samples.clear()
        self._since = 0
        self._skip = self.cooldown
        self._probe = level if reason == "up" else None

    def observe(self, level: int, latency_ms: float, target_ms: float) -> Decision:
        """Record one request's latency at ``level`` and decide the level of the next one."""
        if not 1 <= level <= self.top:
            raise ValueError(f"level {level} is outside the ladder 1..{self.top}")
        self._count += 1
        if target_ms != self._target:
            self._target = target_ms
            self._blocked_until.clear()
            self._backoff.clear()
        if self._skip > 0:
            self._skip -= 1
            return Decision(level)
        self._samples.append(float(latency_ms))
        self._since += 1
        if len(self._samples) < self.window or self._since < self.stride:
            return Decision(level)
        self._since = 0
        mean = sum(self._samples) / len(self._samples)
        probe, self._probe = self._probe, None
        if mean > target_ms:
            if probe == level:  # the step up did not hold: block it for a while
                wait = self._backoff.get(level, self.probe_backoff)
                self._blocked_until[level] = self._count + wait
                self._backoff[level] = 2 * wait
            if level > 1:
                return Decision(level - 1, "down", mean)
            return Decision(level, None, mean)
        low = target_ms * (1.0 - self.band)
        if self.step_up and level < self.top and mean < low:
            expected = self.profiled_ms[level] * mean / self.profiled_ms[level - 1]
            blocked = self._count < self._blocked_until.get(level + 1, 0)
            if expected < low and not blocked:
                return Decision(level + 1, "up", mean, expected)
            return Decision(level, None, mean, expected)
        return Decision(level, None, mean)
