"""A measured device rebuilt from the settings it recorded (e.g. those stored in a latency LUT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hardware.measure.cpu import CPUDevice
from hardware.measure.cuda import CUDADevice
from hardware.measure.measured import MeasuredDevice

# Timing-protocol keys every measured device records (MeasuredDevice.timing).
TIMING_KEYS = (
    "warmup",
    "min_repeats",
    "max_repeats",
    "round_size",
    "rel_tol",
    "max_seconds",
    "min_time_s",
    "stable_rounds",
)


def measured_device(settings: Mapping[str, Any]) -> MeasuredDevice:
    """A CPU or CUDA device with the backend, input shape, layout, threads and timing protocol
    of ``settings`` (as ``device.settings()`` recorded them); energy is off.

    Raises:
        ValueError: the settings name no measured backend (``cpu`` / ``cuda``).
    """
    backend = settings.get("backend")
    common: dict[str, Any] = {k: settings[k] for k in TIMING_KEYS if k in settings}
    for key in ("batch_size", "resolution", "in_channels", "channels_last"):
        if key in settings:
            common[key] = settings[key]
    common.update(name=settings.get("device") or str(backend), energy=False)
    if backend == "cpu":
        return CPUDevice(threads=settings.get("threads", 1), **common)
    if backend == "cuda":
        return CUDADevice(cuda_index=int(settings.get("cuda_index", 0)), **common)
    raise ValueError(
        f"settings name no measured backend (backend={backend!r}); expected 'cpu' or 'cuda'"
    )
