"""The LUT device: latency predicted from a latency LUT, optionally extended on demand."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from hardware.base import (
    Architecture,
    ModelBuilder,
    arch_cache_key,
    arch_record,
    energy_unavailable,
    resolve_model,
)
from hardware.lut.table import LatencyLUT, MissingOpsError
from hardware.lut.trace import trace_ops
from hardware.measure.recorded import measured_device

ON_MISSING = ("error", "measure")


class LUTDevice:
    """Device whose latency is predicted from a latency LUT (sum of ops + calibrated overheads).

    A network that calls an op signature the LUT lacks raises :class:`MissingOpsError` (a
    KeyError naming the signatures, the architecture, the file and how to measure them); with
    ``on_missing="measure"`` the device instead times the missing ops on this machine under the
    LUT's own settings (refused with a ValueError where this machine's settings differ, as the
    LUT refuses to mix timings), records them with ``source: "on_demand"`` and a timestamp, and
    saves the extended LUT to its file.

    Args:
        path: the LUT JSON file (built with ``python -m search.lut_cli`` or :func:`build_lut`).
        space: builds the network from an arch when ``metrics`` gets no model.
        batch_size, resolution, in_channels: input shape used to trace networks; None takes
            the values the LUT was built with.
        stat: per-op statistic to sum (``median_ms`` or ``mean_ms``).
        name: device name recorded in results.
        on_missing: ``"error"`` (default) or ``"measure"`` (see above).
        measure_device: the measured device that times missing ops; None builds a CPU / CUDA
            device from the LUT's recorded settings (:func:`hardware.measure.measured_device`).
    """

    def __init__(
        self,
        path: str,
        space: ModelBuilder | None = None,
        batch_size: int | None = None,
        resolution: int | None = None,
        in_channels: int | None = None,
        stat: str = "median_ms",
        name: str = "lut",
        on_missing: str = "error",
        measure_device: Any | None = None,
    ) -> None:
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
        self.lut = LatencyLUT.load(path, stat=stat)
        self.path = str(path)
        self.space = space
        dev = self.lut.device
        self.batch_size = batch_size or dev.get("batch_size", 1)
        self.resolution = resolution or dev.get("resolution", 32)
        self.in_channels = in_channels or dev.get("in_channels", 3)
        self.name = name
        self.on_missing = on_missing
        self.measure_device = measure_device
        self._signatures: dict[str, list[str]] = {}

    def signatures(self, arch: Architecture, model: nn.Module | None = None) -> list[str]:
        """Op signatures of ``arch`` (traced once on CPU, then cached per arch)."""
        key = arch_cache_key(arch)
        if key not in self._signatures or model is not None:
            net = resolve_model(arch, model, self.space, self.name).eval()
            x = torch.zeros(self.batch_size, self.in_channels, self.resolution, self.resolution)
            if self.lut.device.get("channels_last"):
                net = net.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            self._signatures[key] = trace_ops(net, x, self.lut.functional).signatures
        return self._signatures[key]

    def _measure_missing(self, arch: Architecture, model: nn.Module | None) -> None:
        """Time the ops of ``arch`` the LUT lacks under its settings, record them, save."""
        device = self.measure_device
        if device is None:
            shape = dict(
                batch_size=self.batch_size, resolution=self.resolution, in_channels=self.in_channels
            )
            device = measured_device({**self.lut.device, **shape})
        net = copy.deepcopy(resolve_model(arch, model, self.space, self.name))
        net = device.prepare(net, device.torch_device)
        trace = trace_ops(net, device.example_input(device.torch_device), self.lut.functional)
        self.lut.extend(trace, device, self.path, source="on_demand")  # refuses other settings
        self.lut.save(self.path)

    def metrics(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Any]:
        """LUT-predicted ``latency_ms``; energy is not in a latency LUT.

        Raises:
            MissingOpsError: the network calls ops the LUT lacks (``on_missing="error"``, or
                still missing after measuring).
        """
        sigs = self.signatures(arch, model)
        if self.lut.missing(sigs) and self.on_missing == "measure":
            self._measure_missing(arch, model)
        missing = self.lut.missing(sigs)
        if missing:
            raise MissingOpsError(missing, arch=arch_record(arch), path=self.path)
        return {
            "arch": arch_record(arch),
            "latency_ms": self.lut.predict(sigs),
            "latency_op_sum_ms": self.lut.op_sum(sigs),
            "latency_fixed_ms": self.lut.fixed_ms,
            "latency_per_call_ms": self.lut.per_call_ms,
            "latency_n_calls": len(sigs),
            **energy_unavailable("a latency lookup table holds no energy"),
            "settings": {
                **{k: v for k, v in self.lut.device.items() if k != "source"},
                "device": self.name,
                "source": f"lut {self.path}",
                "lut_device": self.lut.device.get("device"),
                "stat": self.lut.stat,
                "frequency_setting": self.lut.device.get("frequency_setting"),
            },
        }
