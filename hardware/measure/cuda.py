"""Measured latency (CUDA events) and NVML energy of a network on a CUDA GPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hardware.base import (
    Architecture,
    ModelBuilder,
    arch_record,
    energy_unavailable,
    resolve_model,
)
from hardware.energy import EnergyUnavailable, NvmlEnergyMeter, measure_energy
from hardware.measure.measured import MeasuredDevice
from hardware.measure.timing import TimingStats, time_until_stable


class CUDADevice(MeasuredDevice):
    """Latency (CUDA events) and NVML energy of a network run on a CUDA GPU.

    Args:
        name: device name recorded in results.
        cuda_index: torch CUDA device index.
        batch_size, resolution, in_channels: input shape.
        warmup, min_repeats, max_repeats, round_size, rel_tol, max_seconds, min_time_s,
            stable_rounds: timing protocol (see :func:`time_until_stable`).
        channels_last: run in channels-last memory format.
        energy: read NVML's total-energy counter where the GPU has one.
        energy_window_s: seconds of repeated inference per energy reading (the counter updates
            roughly every 20-100 ms, so keep this >= 1 s).
        space: builds the network from an arch when ``metrics`` gets no model.
        seed: seed of the random input.

    Raises:
        RuntimeError: at ``metrics`` time, if torch sees no CUDA device at that index.
    """

    backend = "cuda"

    def __init__(
        self,
        name: str = "cuda",
        cuda_index: int = 0,
        batch_size: int = 1,
        resolution: int = 32,
        in_channels: int = 3,
        warmup: int = 20,
        min_repeats: int = 200,
        max_repeats: int = 10000,
        round_size: int = 25,
        rel_tol: float = 0.01,
        max_seconds: float = 30.0,
        min_time_s: float = 1.0,
        stable_rounds: int = 3,
        channels_last: bool = False,
        energy: bool = True,
        energy_window_s: float = 2.0,
        space: ModelBuilder | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            name,
            batch_size,
            resolution,
            in_channels,
            warmup,
            min_repeats,
            max_repeats,
            round_size,
            rel_tol,
            max_seconds,
            min_time_s,
            stable_rounds,
            channels_last,
            energy,
            energy_window_s,
            space,
            seed,
        )
        self.cuda_index = cuda_index

    def _check_cuda(self) -> torch.device:
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {self.name!r} needs CUDA, but torch sees no CUDA device on this "
                "machine; use the 'cpu' hardware config here"
            )
        count = torch.cuda.device_count()
        if not 0 <= self.cuda_index < count:
            raise RuntimeError(
                f"cuda_index {self.cuda_index} out of range: {count} CUDA device(s) visible"
            )
        return torch.device("cuda", self.cuda_index)

    def time_callable(self, fn: Callable[[], Any]) -> TimingStats:
        """Timing of ``fn`` with CUDA events under this device's protocol (used by the LUT)."""
        dev = self._check_cuda()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def timed_call() -> float:
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        with torch.cuda.device(dev), torch.inference_mode():
            return time_until_stable(timed_call, **self.timing)

    def settings(self) -> dict[str, Any]:
        """Recorded settings of this device (without a clock reading)."""
        dev = self._check_cuda()
        return {
            **self.base_settings(),
            "gpu": torch.cuda.get_device_properties(dev).name,
            "cuda_index": self.cuda_index,
            "cuda": torch.version.cuda,
        }

    @property
    def torch_device(self) -> torch.device:
        return self._check_cuda()

    def metrics(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Any]:
        """Measured ``latency_ms`` (CUDA events, median) with IQR and count; NVML energy."""
        dev = self._check_cuda()
        net = self.prepare(resolve_model(arch, model, self.space, self.name), dev)
        x = self.example_input(dev)

        def call() -> None:
            net(x)

        def sync() -> None:
            torch.cuda.synchronize(dev)

        stats = self.time_callable(call)
        with torch.cuda.device(dev), torch.inference_mode():
            energy = self._energy(call, sync)
        settings = {**self.settings(), "frequency_setting": gpu_clocks(self.cuda_index)}
        return {"arch": arch_record(arch), **stats.as_metrics(), **energy, "settings": settings}

    def _energy(self, call: Callable[[], None], sync: Callable[[], None]) -> dict[str, Any]:
        if not self.energy:
            return energy_unavailable("disabled (energy=False)")
        try:
            meter = NvmlEnergyMeter(self.cuda_index)
        except EnergyUnavailable as err:
            return energy_unavailable(str(err))
        out = measure_energy(call, meter, self.energy_window_s, sync=sync)
        return {**out, "energy_source": meter.source, "energy_note": "whole-GPU NVML energy"}


def gpu_clocks(cuda_index: int) -> dict[str, int] | None:
    """Current SM and memory clocks in MHz from NVML (the DVFS setting), None where unknown."""
    try:
        import pynvml as nvml

        from hardware.energy import nvml_handle

        nvml.nvmlInit()
        h = nvml_handle(nvml, cuda_index)
        return {
            "sm_mhz": int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
            "mem_mhz": int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM)),
        }
    except Exception:  # pynvml missing or no NVML: the setting is simply unknown
        return None
