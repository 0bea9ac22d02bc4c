"""Measured latency and energy: run the network on this machine's CPU or CUDA GPU.

Timing protocol (both backends, :func:`time_until_stable`): warm up until the timings stop
falling, then time single inferences in rounds; the estimate is the median of the per-round
medians, and measuring stops once it has stayed within ``rel_tol`` over ``stable_rounds``
consecutive rounds, after at least ``min_repeats`` samples and ``min_time_s`` seconds of timed
calls (at most ``max_repeats`` samples or ``max_seconds``). The result reports that estimate as
the median, the inter-quartile range and count of the samples, and whether it settled
(``latency_stable``).
CPU timings use ``time.perf_counter`` around a call; CUDA timings use CUDA events around the
call with a synchronisation per sample. Energy, where the machine exposes a counter (RAPL for
CPUs, NVML for GPUs), is read over a separate window of repeated inferences.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hardware.base import (
    ModelBuilder,
    cpu_model_name,
    energy_unavailable,
    load_average,
    resolve_model,
)
from hardware.energy import (
    POWERCAP_ROOT,
    EnergyUnavailable,
    NvmlEnergyMeter,
    RaplMeter,
    measure_energy,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimingStats:
    """Summary of repeated single-call timings in milliseconds.

    ``median_ms`` is the protocol's estimate (median of per-round medians); ``iqr_ms``,
    ``mean_ms`` and ``std_ms`` describe all samples.
    """

    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    count: int
    stable: bool

    def as_metrics(self, prefix: str = "latency") -> dict[str, Any]:
        """``latency_ms`` (the median) and its spread, as result entries."""
        d = asdict(self)
        return {
            f"{prefix}_ms": d["median_ms"],
            f"{prefix}_iqr_ms": d["iqr_ms"],
            f"{prefix}_mean_ms": d["mean_ms"],
            f"{prefix}_std_ms": d["std_ms"],
            f"{prefix}_count": d["count"],
            f"{prefix}_stable": d["stable"],
        }


def summarize(samples_ms: np.ndarray, stable: bool, median_ms: float | None = None) -> TimingStats:
    """Median, IQR, mean and std of timing samples.

    Args:
        samples_ms: the timed samples.
        stable: whether the protocol's estimate had settled.
        median_ms: the protocol's robust estimate (median of round medians) to report as the
            median; None takes the median of the samples.
    """
    s = np.asarray(samples_ms, dtype=float)
    q25, q50, q75 = np.percentile(s, [25, 50, 75])
    return TimingStats(
        median_ms=float(q50 if median_ms is None else median_ms),
        iqr_ms=float(q75 - q25),
        mean_ms=float(s.mean()),
        std_ms=float(s.std(ddof=1)) if len(s) > 1 else 0.0,
        count=len(s),
        stable=stable,
    )


def time_until_stable(
    timed_call: Callable[[], float],
    warmup: int = 10,
    min_repeats: int = 100,
    max_repeats: int = 5000,
    round_size: int = 20,
    rel_tol: float = 0.01,
    max_seconds: float = 30.0,
    min_time_s: float = 1.0,
    stable_rounds: int = 3,
    max_warmup_rounds: int = 20,
) -> TimingStats:
    """Time ``timed_call`` (which returns the elapsed ms of one call) until its median settles.

    The protocol, in three phases:

    1. Warm-up: ``warmup`` untimed calls, then further warm-up rounds of ``round_size`` calls
       until ``stable_rounds`` rounds in a row fail to beat the fastest so far by ``rel_tol``
       and at least ``min_time_s`` has passed (allocator, thread pool, caches, lazy
       initialisation, clock ramp-up; at most ``max_warmup_rounds`` and half of
       ``max_seconds``).
    2. Timed rounds of ``round_size`` calls. The estimate is the median of the per-round
       medians, so a round hit by a burst of interference (another process, an interrupt
       storm) shifts it by at most one rank.
    3. Stop once at least ``min_repeats`` samples and ``min_time_s`` seconds of timed calls are
       in and the estimate has stayed within ``rel_tol`` (relative) over the last
       ``stable_rounds`` rounds; or at ``max_repeats`` samples / ``max_seconds`` wall-clock,
       where the result says whether it had settled.

    A single "moved < 1% since the last round" check, as this function used before, stops
    after 2-3 rounds on a median that merely paused (30-80 samples), which gave a 27% spread
    of 10 repeated measurements on a quiet Xeon; the minimum measuring time and the multi-round
    window are what make repeated measurements agree.

    Args:
        timed_call: runs the workload once and returns its duration in ms.
        warmup: untimed calls first.
        min_repeats: samples before the stopping rule is checked.
        max_repeats: hard cap on samples.
        round_size: samples per round (one per-round median).
        rel_tol: relative band the estimate must stay in over ``stable_rounds`` rounds.
        max_seconds: wall-clock cap on the whole measurement (warm-up rounds stop at half).
        min_time_s: timed seconds (sum of the samples) before the stopping rule is checked.
        stable_rounds: consecutive rounds over which the estimate must stay within ``rel_tol``.
        max_warmup_rounds: cap on the drift-driven warm-up rounds.
    """
    if min_repeats < 1 or max_repeats < min_repeats or round_size < 1 or stable_rounds < 1:
        raise ValueError(
            f"need 1 <= min_repeats <= max_repeats, round_size >= 1 and stable_rounds >= 1, "
            f"got min_repeats={min_repeats}, max_repeats={max_repeats}, "
            f"round_size={round_size}, stable_rounds={stable_rounds}"
        )
    if warmup < 0 or min_time_s < 0 or max_warmup_rounds < 0:
        raise ValueError(
            f"warmup, min_time_s and max_warmup_rounds must be >= 0, got {warmup}, "
            f"{min_time_s}, {max_warmup_rounds}"
        )
    t0 = time.perf_counter()
    for _ in range(warmup):
        timed_call()
    # Warm only once ``stable_rounds`` rounds in a row fail to beat the fastest round so far:
    # a single noisy round must not end the warm-up while timings are still falling (a cold
    # first measurement in a fresh process ran 35% slow at 2 threads with a one-round rule).
    best, flat, warm_ms = None, 0, 0.0
    for _ in range(max_warmup_rounds):
        batch = [timed_call() for _ in range(round_size)]
        warm_ms += sum(batch)
        median = float(np.median(batch))
        if best is not None and median >= best * (1 - rel_tol):
            flat += 1
            if flat >= stable_rounds and warm_ms >= min_time_s * 1e3:
                break  # no longer getting faster, and warmed for as long as we will measure
        else:
            flat = 0
        if time.perf_counter() - t0 > max_seconds / 2:
            break  # leave the timed phase at least half of the budget
        best = median if best is None else min(best, median)

    samples: list[float] = []
    round_medians: list[float] = []
    estimates: list[float] = []
    while True:
        batch = [timed_call() for _ in range(round_size)]
        samples.extend(batch)
        round_medians.append(float(np.median(batch)))
        estimates.append(float(np.median(round_medians)))
        window = estimates[-(stable_rounds + 1) :]
        settled = len(window) == stable_rounds + 1 and (
            max(window) - min(window) <= rel_tol * estimates[-1]
        )
        enough = len(samples) >= min_repeats and sum(samples) >= min_time_s * 1e3
        if settled and enough:
            return summarize(np.array(samples), stable=True, median_ms=estimates[-1])
        if len(samples) >= max_repeats or time.perf_counter() - t0 > max_seconds:
            return summarize(np.array(samples), stable=settled, median_ms=estimates[-1])


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, restoring the previous count."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_in_passes(
    device: Any, models: Sequence[tuple[str, nn.Module]], passes: int, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """Measure named networks in ``passes`` interleaved passes, each over all of them in a fresh
    shuffled order; returns, per network, its ``device.metrics`` of every pass.

    A machine's slow drift (minutes) then spreads over every network instead of shifting a
    block of consecutive ones, and the median over passes ignores one disturbed measurement.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    out: list[list[dict[str, Any]]] = [[] for _ in models]
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        for i in rng.permutation(len(models)):
            name, model = models[i]
            out[i].append(device.metrics(name, model))
    return out


def pass_agreement(latency_ms: np.ndarray) -> dict[str, list[float]]:
    """How well a machine agrees with itself over interleaved passes (:func:`measure_in_passes`)
    of the same networks: the Spearman correlation between every two passes and each pass's
    mean. ``latency_ms`` is (networks, passes). No predictor of these measurements can rank
    the networks better than the passes rank them against each other."""
    from search.ranking import spearman

    A = np.asarray(latency_ms, dtype=float)
    return {
        "srcc_between_passes": [
            round(spearman(A[:, i], A[:, j]), 3) for i, j in combinations(range(A.shape[1]), 2)
        ],
        "pass_means_ms": A.mean(0).round(3).tolist(),
    }


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


class _MeasuredDevice:
    """Shared settings and result assembly of the CPU and CUDA devices."""

    backend = ""

    def __init__(
        self,
        name: str,
        batch_size: int,
        resolution: int,
        in_channels: int,
        warmup: int,
        min_repeats: int,
        max_repeats: int,
        round_size: int,
        rel_tol: float,
        max_seconds: float,
        min_time_s: float,
        stable_rounds: int,
        channels_last: bool,
        energy: bool,
        energy_window_s: float,
        space: ModelBuilder | None,
        seed: int,
    ) -> None:
        if batch_size < 1 or resolution < 1 or in_channels < 1:
            raise ValueError(
                f"batch_size, resolution and in_channels must be >= 1, got {batch_size}, "
                f"{resolution}, {in_channels}"
            )
        self.name = name
        self.batch_size, self.resolution, self.in_channels = batch_size, resolution, in_channels
        self.timing = dict(
            warmup=warmup,
            min_repeats=min_repeats,
            max_repeats=max_repeats,
            round_size=round_size,
            rel_tol=rel_tol,
            max_seconds=max_seconds,
            min_time_s=min_time_s,
            stable_rounds=stable_rounds,
        )
        self.channels_last = channels_last
        self.energy = energy
        self.energy_window_s = energy_window_s
        self.space = space
        self.seed = seed

    def example_input(self, device: torch.device) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch_size, self.in_channels, self.resolution, self.resolution)
        x = torch.randn(shape, generator=g).to(device)
        return x.to(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        model = model.to(device).eval()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def base_settings(self) -> dict[str, Any]:
        return {
            "device": self.name,
            "source": "measured",
            "backend": self.backend,
            "batch_size": self.batch_size,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "dtype": "float32",
            "channels_last": self.channels_last,
            "torch": torch.__version__,
            "load_average": load_average(),
            **self.timing,
        }


class CPUDevice(_MeasuredDevice):
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

    def metrics(self, arch: str, model: nn.Module | None = None) -> dict[str, Any]:
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
        return {"arch": arch, **stats.as_metrics(), **energy, "settings": settings}

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


class CUDADevice(_MeasuredDevice):
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

    def metrics(self, arch: str, model: nn.Module | None = None) -> dict[str, Any]:
        """Measured ``latency_ms`` (CUDA events, median) with IQR and count; NVML energy."""
        dev = self._check_cuda()
        net = self.prepare(resolve_model(arch, model, self.space, self.name), dev)
        x = self.example_input(dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def call() -> None:
            net(x)

        def timed_call() -> float:
            start.record()
            net(x)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        def sync() -> None:
            torch.cuda.synchronize(dev)

        with torch.cuda.device(dev), torch.inference_mode():
            stats = time_until_stable(timed_call, **self.timing)
            energy = self._energy(call, sync)
        settings = {**self.settings(), "frequency_setting": gpu_clocks(self.cuda_index)}
        return {"arch": arch, **stats.as_metrics(), **energy, "settings": settings}

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
