"""Clock control: set real frequencies through Jetson sysfs / debugfs files or NVIDIA NVML.

Both backends refuse clearly (:class:`DvfsUnavailable`, ``PermissionError``) where files,
drivers or permissions are missing, and check everything before the first write.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardware.energy import nvml_handle, start_nvml

if TYPE_CHECKING:
    from hardware.dvfs.space import DvfsSpace


class DvfsUnavailable(RuntimeError):
    """Frequencies cannot be set or read here (missing files, unsupported GPU, no pynvml)."""


def _writable(path: Path) -> bool:
    # sysfs refuses writes to files without a write bit even for root, so check the mode too.
    return os.access(path, os.W_OK) and bool(
        path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    )


class SysfsDvfsBackend:
    """Set Jetson clocks through sysfs / debugfs (cpufreq, devfreq, BPMP clocks).

    Each domain is ``{kind, paths, unit_hz}``: ``cpufreq`` pins ``scaling_min_freq`` and
    ``scaling_max_freq`` of every listed CPU folder (kHz); ``devfreq`` pins ``min_freq`` and
    ``max_freq`` of a devfreq folder (Hz); ``bpmp_clk`` locks a BPMP debugfs clock
    (``mrq_rate_locked``, ``state``, ``rate`` in Hz; an optional ``available`` file lists its
    rates). Every file is checked before anything is written, so a refused setting changes no
    clock. :meth:`restore` writes back what the first :meth:`set` found.

    Args:
        domains: per domain name, its kind, folders and unit (see ``conf/dvfs/*.yaml``).
        root: prefix of every path (``/`` on the board; a temp folder in tests).
    """

    AVAILABLE = {"cpufreq": "scaling_available_frequencies", "devfreq": "available_frequencies"}
    CURRENT = {"cpufreq": "scaling_cur_freq", "devfreq": "cur_freq", "bpmp_clk": "rate"}
    PIN = {"cpufreq": ("scaling_min_freq", "scaling_max_freq"), "devfreq": ("min_freq", "max_freq")}

    def __init__(self, domains: Mapping[str, Mapping[str, Any]], root: str = "/") -> None:
        self.root = Path(root)
        self.domains: dict[str, dict[str, Any]] = {}
        for name, spec in domains.items():
            kind = spec.get("kind")
            if kind not in ("cpufreq", "devfreq", "bpmp_clk"):
                raise ValueError(
                    f"domain {name!r}: kind must be cpufreq, devfreq or bpmp_clk, got {kind!r}"
                )
            paths = spec.get("paths") or []
            if not paths:
                raise ValueError(f"domain {name!r} lists no sysfs folders")
            default_unit = 1000 if kind == "cpufreq" else 1
            self.domains[name] = {
                "kind": kind,
                "paths": [self._abs(p) for p in paths],
                "unit_hz": int(spec.get("unit_hz", default_unit)),
                "available": self._abs(spec["available"]) if spec.get("available") else None,
            }
        self._saved: dict[Path, str] = {}

    def _abs(self, path: str) -> Path:
        return self.root / str(path).lstrip("/")

    def _domain(self, name: str) -> dict[str, Any]:
        if name not in self.domains:
            raise KeyError(f"unknown clock domain {name!r}; domains: {list(self.domains)}")
        return self.domains[name]

    @staticmethod
    def _read(path: Path) -> str:
        if not path.exists():
            raise DvfsUnavailable(f"{path} does not exist: not this platform, or debugfs unmounted")
        try:
            return path.read_text().strip()
        except PermissionError:
            raise PermissionError(f"cannot read {path}: run as root") from None

    def available(self, name: str) -> list[float]:
        """Levels of a domain in MHz, read from the platform."""
        dom = self._domain(name)
        if dom["kind"] == "bpmp_clk":
            if dom["available"] is None:
                raise DvfsUnavailable(f"domain {name!r} has no 'available' rates file configured")
            path = dom["available"]
        else:
            path = dom["paths"][0] / self.AVAILABLE[dom["kind"]]
        values = [int(v) for v in self._read(path).replace(",", " ").split()]
        return sorted(v * dom["unit_hz"] / 1e6 for v in values)

    def current(self) -> dict[str, float]:
        """Current frequency of every domain in MHz (first folder of each)."""
        out = {}
        for name, dom in self.domains.items():
            path = dom["paths"][0] / self.CURRENT[dom["kind"]]
            out[name] = int(self._read(path)) * dom["unit_hz"] / 1e6
        return out

    def space(self, name: str = "sysfs") -> DvfsSpace:
        """The frequency space as this board reports it (available-frequency files)."""
        from hardware.dvfs.space import DvfsSpace  # space.py builds this backend: import late

        return DvfsSpace(name, {d: {"levels_mhz": self.available(d)} for d in self.domains})

    def _plan(self, setting: Mapping[str, float], tol_mhz: float) -> list[tuple[Path, str]]:
        """Validated (file, value) writes for a setting; raises before any write."""
        writes: list[tuple[Path, str]] = []
        for name, mhz in setting.items():
            dom = self._domain(name)
            try:
                levels = self.available(name)
            except DvfsUnavailable:
                levels = None  # no list to check against (bpmp without 'available')
            if levels is not None and min(abs(v - mhz) for v in levels) > tol_mhz:
                raise ValueError(
                    f"{mhz} MHz is not an available level of {name!r}; levels (MHz): {levels}"
                )
            value = str(round(mhz * 1e6 / dom["unit_hz"]))
            for folder in dom["paths"]:
                if dom["kind"] == "bpmp_clk":
                    files = [(folder / "mrq_rate_locked", "1"), (folder / "state", "1")]
                    files.append((folder / "rate", value))
                else:
                    lo, hi = (folder / f for f in self.PIN[dom["kind"]])
                    raising = int(self._read(hi)) < int(value)
                    # Keep min <= max at every step: raise max first, lower min first.
                    files = [(hi, value), (lo, value)] if raising else [(lo, value), (hi, value)]
                writes.extend(files)
        for path, _ in writes:
            if not path.exists():
                raise DvfsUnavailable(
                    f"{path} does not exist: not this platform, or debugfs unmounted"
                )
            if not _writable(path):
                raise PermissionError(
                    f"{path} is not writable: setting clocks needs root (sudo) and a writable "
                    "sysfs/debugfs file"
                )
        return writes

    def set(self, setting: Mapping[str, float], tol_mhz: float = 0.5) -> dict[str, float]:
        """Pin every domain of ``setting`` (MHz) and return the frequencies read back."""
        writes = self._plan(setting, tol_mhz)
        for path, value in writes:
            self._saved.setdefault(path, path.read_text().strip())
            path.write_text(value)
        return {d: v for d, v in self.current().items() if d in setting}

    def restore(self) -> None:
        """Write back the values the first :meth:`set` replaced (in reverse order)."""
        for path, value in reversed(list(self._saved.items())):
            path.write_text(value)
        self._saved.clear()


class NvmlClockBackend:
    """Set NVIDIA GPU clocks with NVML: application clocks or locked clock ranges.

    Domains: ``gpu`` (graphics / SM clock) and ``mem`` (memory clock), in MHz. ``locked``
    pins the GPU clock (``nvmlDeviceSetGpuLockedClocks``, Volta+) and the memory clock
    (``nvmlDeviceSetMemoryLockedClocks``, Ampere+); ``application`` sets the
    (memory, graphics) application-clock pair. Both need root unless the admin relaxed it.

    Args:
        cuda_index: torch CUDA device index (matched to NVML by UUID).
        mode: ``locked`` or ``application``.
        nvml: the ``pynvml`` module (injected in tests); None imports it lazily.
    """

    def __init__(self, cuda_index: int = 0, mode: str = "locked", nvml: Any = None) -> None:
        if mode not in ("locked", "application"):
            raise ValueError(f"mode must be 'locked' or 'application', got {mode!r}")
        self.nvml, self.mode = start_nvml(nvml, DvfsUnavailable), mode
        self.handle = nvml_handle(self.nvml, cuda_index)

    def _call(self, fn: str, *args: Any) -> Any:
        nv = self.nvml
        try:
            return getattr(nv, fn)(self.handle, *args)
        except nv.NVMLError as err:
            if isinstance(err, getattr(nv, "NVMLError_NoPermission", ())):
                raise PermissionError(
                    f"NVML {fn} needs root (or `nvidia-smi -acp UNRESTRICTED` for application "
                    f"clocks): {err}"
                ) from None
            if isinstance(err, getattr(nv, "NVMLError_NotSupported", ())):
                raise DvfsUnavailable(f"NVML {fn} is not supported on this GPU: {err}") from None
            raise

    def available(self) -> dict[str, list[float]]:
        """Supported memory clocks and the graphics clocks of the highest one, MHz."""
        mem = sorted(float(m) for m in self._call("nvmlDeviceGetSupportedMemoryClocks"))
        gpu = sorted(
            float(g) for g in self._call("nvmlDeviceGetSupportedGraphicsClocks", int(mem[-1]))
        )
        return {"mem": mem, "gpu": gpu}

    def set(self, setting: Mapping[str, float]) -> None:
        """Apply ``{"gpu": MHz, "mem": MHz}`` (either may be left out in ``locked`` mode)."""
        unknown = set(setting) - {"gpu", "mem"}
        if unknown:
            raise KeyError(
                f"unknown clock domain(s) {sorted(unknown)}; NVML domains: ['gpu', 'mem']"
            )
        mem_levels = sorted(int(m) for m in self._call("nvmlDeviceGetSupportedMemoryClocks"))
        mem = int(setting.get("mem", mem_levels[-1]))
        if mem not in mem_levels:
            raise ValueError(f"{mem} MHz is not a supported memory clock; supported: {mem_levels}")
        gpu_levels = sorted(int(g) for g in self._call("nvmlDeviceGetSupportedGraphicsClocks", mem))
        gpu = setting.get("gpu")
        if gpu is not None and int(gpu) not in gpu_levels:
            raise ValueError(
                f"{gpu} MHz is not a supported graphics clock at memory {mem} MHz; supported: "
                f"{gpu_levels}"
            )
        if self.mode == "application":
            self._call(
                "nvmlDeviceSetApplicationsClocks",
                mem,
                int(gpu if gpu is not None else gpu_levels[-1]),
            )
            return
        if gpu is not None:
            self._call("nvmlDeviceSetGpuLockedClocks", int(gpu), int(gpu))
        if "mem" in setting:
            self._call("nvmlDeviceSetMemoryLockedClocks", mem, mem)

    def reset(self) -> None:
        """Back to default clocks."""
        if self.mode == "application":
            self._call("nvmlDeviceResetApplicationsClocks")
        else:
            self._call("nvmlDeviceResetGpuLockedClocks")
            with contextlib.suppress(DvfsUnavailable):  # pre-Ampere: no memory lock to undo
                self._call("nvmlDeviceResetMemoryLockedClocks")
