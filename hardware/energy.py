"""Energy counters: Linux RAPL (powercap) for CPUs and NVML's total-energy counter for GPUs.

Both are cumulative hardware counters; the energy of one inference is the counter difference
over a window of repeated inferences divided by their number. Neither counter can attribute
energy to a process: RAPL counts the whole CPU package (other processes included), NVML the
whole GPU. Where a counter cannot be read the meter refuses with :class:`EnergyUnavailable`
naming the reason; nothing is ever estimated in its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

POWERCAP_ROOT = "/sys/class/powercap"


class EnergyUnavailable(RuntimeError):
    """The energy counter of this machine cannot be read (the message says why)."""


class EnergyMeter(Protocol):
    """A cumulative energy counter."""

    source: str

    def read(self) -> Any:
        """An opaque counter reading."""
        ...

    def delta_mj(self, start: Any, end: Any) -> float:
        """Energy in mJ between two readings."""
        ...


class RaplMeter:
    """CPU package energy from RAPL through Linux powercap (``intel-rapl:N/energy_uj``).

    Sums all top-level package zones (one per socket; AMD Zen exposes the same files). The
    counters wrap at ``max_energy_range_uj``, which :meth:`delta_mj` undoes.

    Args:
        root: the powercap class folder (a fake tree in tests).

    Raises:
        EnergyUnavailable: no package zone, or its counter is not readable (since Linux 5.10
            ``energy_uj`` is readable by root only).
    """

    def __init__(self, root: str | Path = POWERCAP_ROOT) -> None:
        root = Path(root)
        zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not zones:
            raise EnergyUnavailable(
                f"no RAPL package zone (intel-rapl:N) under {root}: this kernel or CPU exposes "
                "no powercap RAPL interface (common in VMs and containers)"
            )
        self.zones = zones
        self.source = f"rapl:{','.join(z.name for z in zones)}"
        self._ranges = []
        for zone in zones:
            self._read_uj(zone / "energy_uj")  # refuses early if unreadable
            max_range = zone / "max_energy_range_uj"
            self._ranges.append(self._read_uj(max_range) if max_range.exists() else None)

    @staticmethod
    def _read_uj(path: Path) -> int:
        try:
            return int(path.read_text().strip())
        except PermissionError:
            raise EnergyUnavailable(
                f"{path} is not readable by this user (Linux >= 5.10 restricts RAPL to root): "
                "run as root or grant read access to energy_uj"
            ) from None
        except (OSError, ValueError) as err:
            raise EnergyUnavailable(f"cannot read RAPL counter {path}: {err}") from None

    def read(self) -> list[int]:
        return [self._read_uj(z / "energy_uj") for z in self.zones]

    def delta_mj(self, start: list[int], end: list[int]) -> float:
        total_uj = 0
        for s, e, wrap in zip(start, end, self._ranges, strict=True):
            d = e - s
            if d < 0:
                if wrap is None:
                    raise EnergyUnavailable("RAPL counter went backwards and its range is unknown")
                d += wrap
            total_uj += d
        return total_uj / 1000.0


class NvmlEnergyMeter:
    """GPU energy from NVML's ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load).

    The counter exists on Volta and newer GPUs. ``pynvml`` (PyPI ``nvidia-ml-py``) is imported
    lazily so that CPU-only machines never need it.

    Args:
        cuda_index: torch CUDA device index; the NVML handle is found by the device's UUID, so
            ``CUDA_VISIBLE_DEVICES`` re-numbering is handled.
        nvml: the ``pynvml`` module (injected in tests); None imports it.

    Raises:
        EnergyUnavailable: pynvml missing, no NVML library, or no energy counter on this GPU.
    """

    def __init__(self, cuda_index: int = 0, nvml: Any = None) -> None:
        self.nvml = nvml = start_nvml(nvml, EnergyUnavailable)
        self.handle = nvml_handle(nvml, cuda_index)
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except nvml.NVMLError as err:
            raise EnergyUnavailable(
                f"this GPU has no NVML energy counter (needs Volta or newer): {err}"
            ) from None
        self.source = f"nvml:cuda{cuda_index}"

    def read(self) -> int:
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def delta_mj(self, start: int, end: int) -> float:
        return float(end - start)


def start_nvml(nvml: Any, error: type[Exception]) -> Any:
    """The ``pynvml`` module (imported lazily unless injected), initialised.

    Raises:
        error: pynvml is not installed, or NVML cannot start (no driver / library).
    """
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            hint = "pip install 'hwnas[gpu]' (nvidia-ml-py)"
            raise error(f"pynvml is not installed: {hint}") from None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as err:
        raise error(f"NVML could not start: {err}") from None
    return nvml


def nvml_handle(nvml: Any, cuda_index: int) -> Any:
    """NVML handle of a torch CUDA device: by UUID when torch knows it, else by index."""
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # no CUDA torch, old torch without .uuid, or a MIG/UUID mismatch
        return nvml.nvmlDeviceGetHandleByIndex(cuda_index)


def measure_energy(
    run: Callable[[], None],
    meter: EnergyMeter,
    window_s: float,
    sync: Callable[[], None] | None = None,
) -> dict[str, float | int]:
    """Energy per call of ``run`` over a window of at least ``window_s`` seconds.

    Counters update every few to ~100 ms, so the window must be long against that period;
    the call count is recorded with the result.

    Returns:
        ``energy_mj`` (per call), ``power_w`` (mean over the window), ``energy_calls`` and
        ``energy_window_s``.
    """
    if sync is not None:
        sync()
    start, t0 = meter.read(), time.perf_counter()
    calls = 0
    while True:
        run()
        calls += 1
        if calls % 4 == 0 or window_s <= 0:
            if sync is not None:
                sync()
            if time.perf_counter() - t0 >= window_s:
                break
    if sync is not None:
        sync()
    end, elapsed = meter.read(), time.perf_counter() - t0
    total_mj = meter.delta_mj(start, end)
    return {
        "energy_mj": total_mj / calls,
        "power_w": total_mj / 1000.0 / elapsed,
        "energy_calls": calls,
        "energy_window_s": round(elapsed, 4),
    }
