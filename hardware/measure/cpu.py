"""Measured latency (``time.perf_counter``) and RAPL energy of a network on this machine's CPU."""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hardware.base import (
    Architecture,
    ModelBuilder,
    arch_record,
    cpu_model_name,
    energy_unavailable,
    resolve_model,
)
from hardware.energy import POWERCAP_ROOT, EnergyUnavailable, RaplMeter, measure_energy
from hardware.measure.measured import MeasuredDevice
from hardware.measure.timing import TimingStats, time_until_stable, torch_threads

log = logging.getLogger(__name__)


def omp_wait_policy() -> str:
    """The OpenMP wait policy torch's workers run under (``OMP_WAIT_POLICY``, read by the
    OpenMP runtime when torch loads, so it must be set before Python starts): ``active``
    (workers spin between parallel regions), ``passive`` (they sleep) or ``default`` (GNU
    OpenMP spins a while, then sleeps)."""
    return os.environ.get("OMP_WAIT_POLICY", "default").strip().lower() or "default"


def cpu_frequency_khz() -> list[int] | None:
    """Current cpufreq frequency of every CPU in kHz (the DVFS setting), None where unknown."""
    files = sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
    try:
        return [int(f.read_text()) for f in files] or None
    except (OSError, ValueError):
        return None


class CPUDevice(MeasuredDevice):
    """Latency (and RAPL energy where readable) of a network run on this machine's CPU.

    Args:
        name: device name recorded in results.
        threads: torch intra-op threads during measurement (restored afterwards).
        batch_size: images per inference.
        resolution: input height = width in pixels.
        in_channels: input channels.
        warmup, min_repeats, max_repeats, round_size, rel_tol, max_seconds, min_time_s,
            stable_rounds: timing protocol (see :func:`time_until_stable`).
        channels_last: run in channels-last memory format.
        energy: read RAPL package energy if this machine allows it.
        energy_window_s: seconds of repeated inference per energy reading.
        powercap_root: the powercap folder (RAPL files).
        space: builds the network from an arch when ``metrics`` gets no model.
        seed: seed of the random input.
    """

    backend = "cpu"
    torch_device = torch.device("cpu")

    def __init__(
        self,
        name: str = "cpu",
        threads: int | None = 1,
        batch_size: int = 1,
        resolution: int = 32,
        in_channels: int = 3,
        warmup: int = 10,
        min_repeats: int = 100,
        max_repeats: int = 5000,
        round_size: int = 20,
        rel_tol: float = 0.01,
        max_seconds: float = 30.0,
        min_time_s: float = 1.0,
        stable_rounds: int = 3,
        channels_last: bool = False,
        energy: bool = True,
        energy_window_s: float = 1.0,
        powercap_root: str = POWERCAP_ROOT,
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
        self.threads = threads
        self.powercap_root = powercap_root
        if (threads is None or threads > 1) and omp_wait_policy() != "active":
            log.warning(
                "%s threads with OMP_WAIT_POLICY=%s: OpenMP workers may sleep between a small "
                "network's ops and the wake-ups make multi-thread timings drift (2-thread NB201 "
                "means 3.7 -> 5.1 ms over 10 minutes on a 2-core VM); start Python with "
                "OMP_WAIT_POLICY=ACTIVE for stable multi-thread timing",
                "all" if threads is None else threads,
                os.environ.get("OMP_WAIT_POLICY", "unset"),
            )

    def time_callable(self, fn: Callable[[], Any]) -> TimingStats:
        """Timing of ``fn`` under this device's protocol and thread setting (used by the LUT)."""

        def timed_call() -> float:
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3

        with torch_threads(self.threads), torch.inference_mode():
            return time_until_stable(timed_call, **self.timing)

    def settings(self) -> dict[str, Any]:
        """Recorded settings of this device (without a frequency reading)."""
        return {
            **self.base_settings(),
            "threads": torch.get_num_threads() if self.threads is None else self.threads,
            "omp_wait_policy": omp_wait_policy(),
            "cpu": cpu_model_name() or platform.processor() or None,
        }

    def metrics(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Any]:
        """Measured ``latency_ms`` (median) with IQR and count; RAPL energy or its absence."""
        dev = torch.device("cpu")
        net = self.prepare(resolve_model(arch, model, self.space, self.name), dev)
        x = self.example_input(dev)

        def call() -> None:
            net(x)

        stats = self.time_callable(call)
        with torch_threads(self.threads), torch.inference_mode():
            energy = self._energy(call)
        settings = {**self.settings(), "frequency_setting": {"cpu_khz": cpu_frequency_khz()}}
        return {"arch": arch_record(arch), **stats.as_metrics(), **energy, "settings": settings}

    def _energy(self, call: Callable[[], None]) -> dict[str, Any]:
        if not self.energy:
            return energy_unavailable("disabled (energy=False)")
        try:
            meter = RaplMeter(self.powercap_root)
        except EnergyUnavailable as err:
            return energy_unavailable(str(err))
        out = measure_energy(call, meter, self.energy_window_s)
        return {
            **out,
            "energy_source": meter.source,
            "energy_note": "whole-package RAPL energy: includes other processes on the CPU",
        }
