"""DVFS: frequency spaces, a latency/energy model over frequency settings, and clock control.

* :mod:`hardware.dvfs.space`, :class:`DvfsSpace`: the frequency levels of each clock domain
  (CPU, GPU, memory controller EMC) of a platform, as config data
  (``conf/dvfs/<platform>.yaml``, HADAS Table II).
* :mod:`hardware.dvfs.model`, :class:`DvfsModel`: (architecture, frequency setting) -> latency
  and energy from one base measurement (or table value) at a reference setting; its physics is
  in its docstring. :func:`workload_profile` gives a network's arithmetic intensity.
* :mod:`hardware.dvfs.fit`, :func:`fit_dvfs_model`: calibrates its parameters from
  measurements at several settings.
* :mod:`hardware.dvfs.device`, :class:`DvfsDevice`: any :class:`hardware.base.Device` seen
  through a DvfsModel at a setting.
* :mod:`hardware.dvfs.backends`: :class:`SysfsDvfsBackend` (Jetson cpufreq / devfreq / BPMP
  clocks) and :class:`NvmlClockBackend` (NVIDIA application / locked clocks) set real
  frequencies where the platform allows it, and refuse clearly where files or permissions are
  missing.

Every setting is a dict ``{domain: MHz}``, e.g. ``{"cpu": 2035.2, "gpu": 1300.5, "emc": 1866}``.
"""

from hardware.dvfs.backends import DvfsUnavailable, NvmlClockBackend, SysfsDvfsBackend
from hardware.dvfs.device import DvfsDevice
from hardware.dvfs.fit import fit_dvfs_model
from hardware.dvfs.model import DvfsModel, workload_profile
from hardware.dvfs.space import DvfsSpace

__all__ = [
    "DvfsDevice",
    "DvfsModel",
    "DvfsSpace",
    "DvfsUnavailable",
    "NvmlClockBackend",
    "SysfsDvfsBackend",
    "fit_dvfs_model",
    "workload_profile",
]
