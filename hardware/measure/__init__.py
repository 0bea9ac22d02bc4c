"""Measured latency and energy: run the network on this machine's CPU or CUDA GPU.

Timing protocol (both backends, :func:`time_until_stable` in :mod:`hardware.measure.timing`):
warm up until the timings stop falling, then time single inferences in rounds; the estimate is
the median of the per-round medians, and measuring stops once it has stayed within ``rel_tol``
over ``stable_rounds`` consecutive rounds, after at least ``min_repeats`` samples and
``min_time_s`` seconds of timed calls (at most ``max_repeats`` samples or ``max_seconds``). The
result reports that estimate as the median, the inter-quartile range and count of the samples,
and whether it settled (``latency_stable``).
CPU timings (:mod:`hardware.measure.cpu`) use ``time.perf_counter`` around a call; CUDA timings
(:mod:`hardware.measure.cuda`) use CUDA events around the call with a synchronisation per
sample. Energy, where the machine exposes a counter (RAPL for CPUs, NVML for GPUs), is read over
a separate window of repeated inferences. :mod:`hardware.measure.passes` measures several
networks in interleaved passes and reports how well the passes agree.
"""

from hardware.measure.cpu import CPUDevice, cpu_frequency_khz, omp_wait_policy
from hardware.measure.cuda import CUDADevice, gpu_clocks
from hardware.measure.measured import MeasuredDevice
from hardware.measure.passes import measure_in_passes, pass_agreement
from hardware.measure.recorded import measured_device
from hardware.measure.timing import TimingStats, summarize, time_until_stable, torch_threads

__all__ = [
    "CPUDevice",
    "CUDADevice",
    "MeasuredDevice",
    "TimingStats",
    "cpu_frequency_khz",
    "gpu_clocks",
    "measure_in_passes",
    "measured_device",
    "omp_wait_policy",
    "pass_agreement",
    "summarize",
    "time_until_stable",
    "torch_threads",
]
