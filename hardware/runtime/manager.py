"""The runtime manager: serves inference on one shared supernet and switches levels in process.

A switch is what Dynamic-OFA makes cheap (section 3.3-3.4): activate the level's architecture
on the shared weights (``set_active``) and copy its pre-computed BN statistics into the BN
buffers (``load_bn_state``). No process restart, no file access (the family's BN tensors are in
memory), no recalibration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from hardware.runtime.controller import ReactiveController
from hardware.runtime.family import Family, Level
from hardware.runtime.policies import select_level


@runtime_checkable
class SwitchableModel(Protocol):
    """What the manager needs of a network: a switchable path and loadable BN statistics."""

    def set_active(self, arch: Mapping[str, Any]) -> None: ...

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class SwitchEvent:
    """One switch: when, between which levels, why, and its cost in ms.

    Attributes:
        request: index of the first request served by the new level.
        from_level: the level before (None for the first activation).
        to_level: the level after.
        reason: ``"init"``, ``"target"`` (lookup-table pick on a new target), ``"down"`` /
            ``"up"`` (reactive controller) or ``"manual"``.
        switch_ms: ``set_active`` + ``load_bn_state``.
        set_active_ms: ``set_active`` alone.
        load_bn_ms: ``load_bn_state`` alone.
        time_s: clock reading at the switch.
    """

    request: int
    from_level: int | None
    to_level: int
    reason: str
    switch_ms: float
    set_active_ms: float
    load_bn_ms: float
    time_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InferenceRecord:
    """One served request.

    Attributes:
        request: 0-based request index.
        level: the level that served it.
        latency_ms: its measured inference latency.
        target_ms: the latency target in force (None: none set).
        switched: True when this is the first request served after a switch.
        next_level: the level chosen for the next request.
        reason: why the level changes after this request (None: it does not).
        window_mean_ms: the controller's window mean (None while filling / no controller).
    """

    request: int
    level: int
    latency_ms: float
    target_ms: float | None
    switched: bool
    next_level: int
    reason: str | None
    window_mean_ms: float | None


class RuntimeManager:
    """Serves a family's levels on one model, switching them in process.

    Args:
        model: the shared supernet (anything with ``set_active`` and ``load_bn_state``).
        family: the loaded family (levels and BN tensors in memory).
        processor: which ladder of the family to serve (e.g. ``cpu_1t``).
        controller: the reactive controller (None: the level changes only by target or hand).
        level: the level to start at (None: the lookup-table pick for ``target_ms`` when
            ``select_on_target``, else the top level).
        target_ms: the initial latency target.
        select_on_target: on every new target, jump to the lookup-table level for it
            (:func:`~hardware.runtime.policies.select_level`; the paper's single-workload
            policy); the controller then corrects from there on observed latency.
        device: where the model runs; BN tensors are moved there once, here.
        clock: seconds as a float (``time.perf_counter``; a fake one in tests).
    """

    def __init__(
        self,
        model: SwitchableModel,
        family: Family,
        processor: str,
        controller: ReactiveController | None = None,
        level: int | None = None,
        target_ms: float | None = None,
        select_on_target: bool = True,
        device: str | torch.device = "cpu",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not isinstance(model, SwitchableModel):
            raise TypeError(
                f"{type(model).__name__} lacks set_active(arch) / load_bn_state(state): the "
                "runtime switches a supernet's active path and BN statistics"
            )
        self.model, self.family, self.processor = model, family, processor
        self.levels: list[Level] = family.levels(processor)
        if controller is not None and controller.top != len(self.levels):
            raise ValueError(
                f"the controller has {controller.top} levels, the {processor!r} ladder "
                f"{len(self.levels)}"
            )
        self.controller, self.select_on_target, self.clock = controller, select_on_target, clock
        self.device = torch.device(device)
        self._bn = [
            {k: v.to(self.device) for k, v in family.bn_state(lv).items()} for lv in self.levels
        ]
        if hasattr(model, "eval"):
            model.eval()
        self.switches: list[SwitchEvent] = []
        self.requests = 0
        self.target_ms = target_ms
        self.level = 0  # none active yet
        self._just_switched = False
        if level is None:
            level = (
                self.lut_level(target_ms)
                if target_ms is not None and select_on_target
                else len(self.levels)
            )
        self.switch(level, reason="init")

    @property
    def current(self) -> Level:
        """The active level."""
        return self.levels[self.level - 1]

    def lut_level(self, target_ms: float | None, acc_top1: float | None = None) -> int:
        """The lookup-table level for the constraints (raises when infeasible)."""
        return select_level(self.levels, latency_ms=target_ms, acc_top1=acc_top1).level

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def switch(self, level: int, reason: str = "manual") -> SwitchEvent:
        """Activate ``level``: ``set_active(arch)``, then ``load_bn_state(bn)``; the event."""
        if not 1 <= level <= len(self.levels):
            raise ValueError(
                f"level {level} is outside the {self.processor!r} ladder 1..{len(self.levels)}"
            )
        lv = self.levels[level - 1]
        with torch.no_grad():
            self._sync()
            t0 = self.clock()
            self.model.set_active(lv.arch)
            t1 = self.clock()
            self.model.load_bn_state(self._bn[level - 1])
            self._sync()
            t2 = self.clock()
        event = SwitchEvent(
            request=self.requests,
            from_level=self.level or None,
            to_level=level,
            reason=reason,
            switch_ms=(t2 - t0) * 1e3,
            set_active_ms=(t1 - t0) * 1e3,
            load_bn_ms=(t2 - t1) * 1e3,
            time_s=t2,
        )
        self.level = level
        self.switches.append(event)
        self._just_switched = reason != "init"
        if self.controller is not None:
            self.controller.on_switch(level, reason)
        return event

    def set_target(self, target_ms: float | None, acc_top1: float | None = None) -> None:
        """A new latency (and optionally accuracy) target; with ``select_on_target`` the
        lookup table picks the level for it (raises when no level meets it). The same target
        again changes nothing: the level then moves only on observed latency."""
        if target_ms == self.target_ms:
            return
        self.target_ms = target_ms
        if self.select_on_target and target_ms is not None:
            level = self.lut_level(target_ms, acc_top1)
            if level != self.level:
                self.switch(level, reason="target")

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, InferenceRecord]:
        """Run one request, time it, feed the controller and switch if it says so."""
        level, switched = self.level, self._just_switched
        self._just_switched = False
        with torch.inference_mode():
            self._sync()
            t0 = self.clock()
            out = self.model(x)
            self._sync()
            latency_ms = (self.clock() - t0) * 1e3
        reason, mean = None, None
        self.requests += 1
        if self.controller is not None and self.target_ms is not None:
            decision = self.controller.observe(level, latency_ms, self.target_ms)
            mean = decision.window_mean_ms
            if decision.level != level:
                reason = decision.reason
                self.switch(decision.level, reason=decision.reason or "manual")
        record = InferenceRecord(
            request=self.requests - 1,
            level=level,
            latency_ms=latency_ms,
            target_ms=self.target_ms,
            switched=switched,
            next_level=self.level,
            reason=reason,
            window_mean_ms=mean,
        )
        return out, record
