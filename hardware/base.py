"""The one interface every hardware cost source implements, and what its results look like."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from torch import nn

# Metric names every device uses; a device that cannot obtain one reports None plus a reason.
METRICS = ("latency_ms", "energy_mj", "power_w")

# An architecture is opaque to hardware: a benchmark's own string (NB201's ``|op~0|+...``) or a
# mapping decision label -> choice. Devices never parse it: they key caches on
# :func:`arch_cache_key`, record :func:`arch_record` and hand it to the builder or the table.
Architecture = str | Mapping[str, Any]


def arch_cache_key(arch: Architecture) -> str:
    """A stable cache key: the string itself, or the mapping as sorted-key JSON."""
    if isinstance(arch, str):
        return arch
    if isinstance(arch, Mapping):
        return json.dumps(dict(arch), sort_keys=True)
    raise TypeError(f"an architecture is a string or a mapping, got {type(arch).__name__}")


def arch_record(arch: Architecture) -> str | dict[str, Any]:
    """The architecture as it goes into a result: JSON-serialisable (a mapping becomes a dict)."""
    arch_cache_key(arch)  # same type check
    return arch if isinstance(arch, str) else dict(arch)


@runtime_checkable
class Device(Protocol):
    """Answers "how fast and how costly is this architecture here, at this setting".

    ``metrics`` returns named metrics with units in their names (``latency_ms``, ``energy_mj``,
    ``power_w``); a metric that cannot be obtained is ``None`` (never an invented number) with
    the reason under ``<metric>_reason``, and the measurement settings (batch size, threads,
    resolution, frequency setting, device name, source) are recorded under ``settings``.
    ``arch`` is a string or a mapping (:data:`Architecture`) that the device never parses: it
    goes to the builder (``space.build_subnet``) or the table as given, caches key on
    :func:`arch_cache_key`, and the result's ``"arch"`` is :func:`arch_record` (JSON-ready).
    """

    name: str

    def metrics(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Any]:
        """Metrics of ``arch`` (built as ``model`` where the device must run it)."""
        ...


class ModelBuilder(Protocol):
    """What a device needs to build a network from an architecture (e.g. ``NB201Space``)."""

    def build_subnet(self, arch: Architecture) -> nn.Module: ...


def resolve_model(
    arch: Architecture, model: nn.Module | None, space: ModelBuilder | None, device: str
) -> nn.Module:
    """The network to run: ``model`` if given, else ``space.build_subnet(arch)``."""
    if model is not None:
        return model
    if space is None:
        raise ValueError(
            f"device {device!r} runs the network, so it needs the built model of {arch!r}: pass "
            "model=... or construct the device with a space that has build_subnet(arch)"
        )
    return space.build_subnet(arch)


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (recorded next to every timing), None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model_name() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), None elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def not_available(metric: str, reason: str) -> dict[str, Any]:
    """A metric that could not be obtained: ``None`` and why."""
    return {metric: None, f"{metric}_reason": reason}


def energy_unavailable(reason: str) -> dict[str, Any]:
    """Energy and power that could not be obtained, with the reason for both."""
    return {**not_available("energy_mj", reason), **not_available("power_w", reason)}
