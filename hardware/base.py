"""The one interface every hardware cost source implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class Device(Protocol):
    """Answers "how fast and how costly is this architecture here, at this setting".

    ``metrics`` returns named metrics with units in their names (``latency_ms``, ``energy_mj``,
    ``power_w``); a metric that cannot be obtained is ``None`` (never an invented number), and
    the measurement settings (batch size, threads, resolution, frequency setting, source) are
    recorded under ``settings``.
    """

    name: str

    def metrics(self, arch: str, model: nn.Module | None = None) -> dict[str, Any]:
        """Metrics of ``arch`` (built as ``model`` where the device must run it)."""
        ...
