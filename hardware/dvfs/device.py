"""A device seen through a DVFS model at one frequency setting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hardware.base import (
    Architecture,
    Device,
    ModelBuilder,
    arch_cache_key,
    arch_record,
    energy_unavailable,
    resolve_model,
)
from hardware.dvfs.model import DvfsModel, workload_profile


class DvfsDevice:
    """A device seen through a :class:`DvfsModel` at one frequency setting.

    The base device gives latency (and energy) at the model's reference setting; the
    workload's arithmetic intensity comes from the network (built by ``space`` when
    ``metrics`` gets no model) unless ``intensity`` fixes it.

    Args:
        base: the device measured at the reference setting (a table column, a measurement).
        model: the DVFS model of the platform.
        setting: frequency setting to report (partial settings keep reference levels).
        space: builds networks to profile their arithmetic intensity.
        intensity: fixed arithmetic intensity (FLOP/byte) instead of profiling.
        resolution, in_channels: input shape for profiling.
        name: device name recorded in results.
    """

    def __init__(
        self,
        base: Device,
        model: DvfsModel,
        setting: Mapping[str, float] | None = None,
        space: ModelBuilder | None = None,
        intensity: float | None = None,
        resolution: int = 32,
        in_channels: int = 3,
        name: str | None = None,
    ) -> None:
        self.base = base
        self.model = model
        self.setting = model.space.validate(setting or {})
        self.space = space
        if space is not None and getattr(base, "space", False) is None:
            base.space = space  # a measured base device builds its networks from the same space
        self.intensity = intensity
        self.resolution, self.in_channels = resolution, in_channels
        self.name = name or f"{base.name}@dvfs"
        self._intensity_cache: dict[str, float] = {}

    def arch_intensity(self, arch: Architecture, model: nn.Module | None = None) -> float:
        """Arithmetic intensity (FLOP/byte) of ``arch``: fixed, or profiled once per arch."""
        if self.intensity is not None:
            return self.intensity
        key = arch_cache_key(arch)
        if key not in self._intensity_cache or model is not None:
            net = resolve_model(arch, model, self.space, self.name)
            x = torch.zeros(1, self.in_channels, self.resolution, self.resolution)
            self._intensity_cache[key] = workload_profile(net, x)["intensity"]
        return self._intensity_cache[key]

    def metrics(
        self,
        arch: Architecture,
        model: nn.Module | None = None,
        setting: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Base metrics rescaled to ``setting`` (default: the device's own setting)."""
        base = self.base.metrics(arch, model)
        setting = self.setting if setting is None else self.model.space.validate(setting)
        full = {**self.model.reference, **setting}
        out: dict[str, Any] = {"arch": arch_record(arch)}
        if base.get("latency_ms") is None:
            reason = f"base device: {base.get('latency_ms_reason', 'no latency')}"
            out.update(latency_ms=None, latency_ms_reason=reason, **energy_unavailable(reason))
        else:
            intensity = self.arch_intensity(arch, model)
            out.update(
                self.model.predict(base["latency_ms"], base.get("energy_mj"), full, intensity)
            )
            out["arithmetic_intensity"] = intensity
        base_settings = base.get("settings", {})
        out["settings"] = {
            **base_settings,
            "device": self.name,
            "source": f"dvfs-model({self.model.space.name}) over {base_settings.get('source')}",
            "frequency_setting": full,
            "reference_setting": dict(self.model.reference),
        }
        return out
