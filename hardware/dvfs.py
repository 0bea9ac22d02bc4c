"""DVFS: frequency spaces, a latency/energy model over frequency settings, and clock control.

* :class:`DvfsSpace`: the frequency levels of each clock domain (CPU, GPU, memory controller
  EMC) of a platform, as config data (``conf/dvfs/<platform>.yaml``, HADAS Table II).
* :class:`DvfsModel`: (architecture, frequency setting) -> latency and energy from one base
  measurement (or table value) at a reference setting; its physics is in its docstring.
  :func:`fit_dvfs_model` calibrates its parameters from measurements at several settings.
* :class:`DvfsDevice`: any :class:`hardware.base.Device` seen through a DvfsModel at a setting.
* :class:`SysfsDvfsBackend` (Jetson cpufreq / devfreq / BPMP clocks) and
  :class:`NvmlClockBackend` (NVIDIA application / locked clocks) set real frequencies where
  the platform allows it, and refuse clearly where files or permissions are missing.

Every setting is a dict ``{domain: MHz}``, e.g. ``{"cpu": 2035.2, "gpu": 1300.5, "emc": 1866}``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hardware.base import Device, ModelBuilder, energy_unavailable, resolve_model


class DvfsUnavailable(RuntimeError):
    """Frequencies cannot be set or read here (missing files, unsupported GPU, no pynvml)."""


# ------------------------------------------------------------------------------ spaces


class DvfsSpace:
    """Frequency levels per clock domain of one platform.

    Args:
        name: platform name (``jetson_tx2``).
        domains: per domain either ``levels_mhz`` (the exact levels) or ``min_mhz``,
            ``max_mhz`` and ``count`` (``count`` evenly spaced levels, for sources such as
            HADAS Table II that publish only the range and cardinality); an optional
            ``source`` string says where the numbers come from.
        sysfs: the platform's clock files per domain (see :class:`SysfsDvfsBackend`), used by
            :meth:`sysfs_backend`; None where the platform has none.
    """

    def __init__(
        self,
        name: str,
        domains: Mapping[str, Mapping[str, Any]],
        sysfs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not domains:
            raise ValueError(f"DVFS space {name!r} has no clock domains")
        self.name = name
        self._levels: dict[str, np.ndarray] = {}
        self.sources: dict[str, str | None] = {}
        for dom, spec in domains.items():
            spec = dict(spec)
            if spec.get("levels_mhz") is not None:
                levels = np.asarray(sorted(float(v) for v in spec["levels_mhz"]))
            elif {"min_mhz", "max_mhz", "count"} <= spec.keys():
                lo, hi, n = float(spec["min_mhz"]), float(spec["max_mhz"]), int(spec["count"])
                if not (0 < lo <= hi and n >= 1):
                    raise ValueError(f"bad range for {dom!r} of {name!r}: {spec}")
                levels = np.linspace(lo, hi, n)
            else:
                raise ValueError(
                    f"domain {dom!r} of DVFS space {name!r} needs levels_mhz or "
                    f"min_mhz/max_mhz/count, got keys {sorted(spec)}"
                )
            if len(levels) == 0 or levels[0] <= 0:
                raise ValueError(f"domain {dom!r} of {name!r} needs positive levels")
            self._levels[dom] = levels
            self.sources[dom] = spec.get("source")
        self.sysfs = {k: dict(v) for k, v in (sysfs or {}).items()}
        unknown = set(self.sysfs) - set(self._levels)
        if unknown:
            raise ValueError(f"sysfs entries for unknown domains {sorted(unknown)} in {name!r}")

    def sysfs_backend(self, root: str = "/") -> SysfsDvfsBackend:
        """The sysfs control backend of this platform (``root`` prefixes every path)."""
        if not self.sysfs:
            raise DvfsUnavailable(f"DVFS space {self.name!r} names no sysfs clock files")
        return SysfsDvfsBackend(self.sysfs, root=root)

    @property
    def domains(self) -> list[str]:
        return list(self._levels)

    def levels(self, domain: str) -> np.ndarray:
        """Levels of ``domain`` in MHz, ascending."""
        if domain not in self._levels:
            raise KeyError(
                f"unknown clock domain {domain!r}; domains of {self.name}: {self.domains}"
            )
        return self._levels[domain]

    def __len__(self) -> int:
        return int(np.prod([len(v) for v in self._levels.values()]))

    def max_setting(self) -> dict[str, float]:
        """Every domain at its highest level (what ``jetson_clocks`` pins)."""
        return {d: float(v[-1]) for d, v in self._levels.items()}

    def validate(self, setting: Mapping[str, float], tol_mhz: float = 0.5) -> dict[str, float]:
        """The setting with every level snapped to the space; clear error if it is not in it."""
        unknown = set(setting) - set(self._levels)
        if unknown:
            raise KeyError(
                f"unknown clock domain(s) {sorted(unknown)}; domains of {self.name}: {self.domains}"
            )
        out = {}
        for dom, mhz in setting.items():
            levels = self._levels[dom]
            i = int(np.argmin(np.abs(levels - float(mhz))))
            if abs(levels[i] - float(mhz)) > tol_mhz:
                raise ValueError(
                    f"{mhz} MHz is not a level of {dom!r} on {self.name}; levels (MHz): "
                    f"{[round(float(v), 2) for v in levels]}"
                )
            out[dom] = float(levels[i])
        return out

    def encode(self, setting: Mapping[str, float]) -> np.ndarray:
        """Level index per domain (domain order of the space)."""
        s = self.validate(setting)
        return np.array([int(np.argmin(np.abs(self._levels[d] - s[d]))) for d in self.domains])

    def decode(self, index: Sequence[int]) -> dict[str, float]:
        """Setting of a level-index vector."""
        if len(index) != len(self._levels):
            raise ValueError(f"need one level index per domain {self.domains}, got {list(index)}")
        return {d: float(self._levels[d][int(i)]) for d, i in zip(self.domains, index, strict=True)}

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """A uniformly random setting."""
        return self.decode([rng.integers(len(self._levels[d])) for d in self.domains])

    def settings(self) -> Iterator[dict[str, float]]:
        """Every setting of the space (product over domains)."""
        for combo in itertools.product(*self._levels.values()):
            yield dict(zip(self.domains, map(float, combo), strict=True))


# ------------------------------------------------------------------------------ model


def workload_profile(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """FLOPs (torch's FlopCounterMode), bytes moved and arithmetic intensity of one inference.

    Bytes are the float traffic of every leaf op: its inputs, outputs and parameters, each
    read or written once (no cache reuse across ops: an upper bound on DRAM traffic, the usual
    roofline convention). FLOPs count multiply-adds as 2 (conv, linear, matmul); element-wise
    ops are not counted by torch's counter and are memory-bound anyway.
    """
    from torch.utils.flop_counter import FlopCounterMode

    total = [0]

    def nbytes(v: Any) -> int:
        if isinstance(v, torch.Tensor):
            return v.numel() * v.element_size()
        if isinstance(v, (tuple, list)):
            return sum(nbytes(u) for u in v)
        return 0

    def hook(m: nn.Module, args: tuple, out: Any) -> None:
        params = sum(p.numel() * p.element_size() for p in m.parameters(recurse=False))
        total[0] += nbytes(args) + nbytes(out) + params

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    flops = float(counter.get_total_flops())
    return {"flops": flops, "bytes": float(total[0]), "intensity": flops / max(total[0], 1)}


class DvfsModel:
    """Latency and energy of a workload at a frequency setting, from one reference measurement.

    Latency (an additive roofline): the reference latency ``L0`` splits into a host share ``h``
    (CPU-side work: kernel launches, Python; scales with the CPU clock), and the accelerator
    rest, split into a compute-bound share (scales with the core clock) and a memory-bound
    share (scales with the memory clock) by the workload's arithmetic intensity ``I``
    (FLOP/byte) against the device's ridge point ``I_r = peak FLOP/s / peak bytes/s``:
    ``s_c = I / (I + I_r)``, the compute fraction of ``W/P + Q/B`` (work W at peak P, traffic
    Q = W/I at bandwidth B). Then

        L(f) = L0 * [h r_host/f_host + (1-h) s_c r_core/f_core + (1-h)(1-s_c) r_mem/f_mem]

    with r the reference clocks. Energy: ``E(f) = P_static L(f) + sum_d E_d(f)``. Static power
    (leakage, board, DRAM refresh) is ``static_power_fraction`` of the reference power
    ``E0/L0`` and independent of clocks. The dynamic energy of domain d is ``C V_d^2`` per
    cycle times a cycle count fixed by the workload, so ``E_d(f) = E_d0 (V_d(f)/V_d(r))^2``
    (``P = C V^2 f`` integrated over a busy time proportional to ``1/f``); at the reference
    the dynamic energy ``E0 - P_static L0`` splits over the domains by their latency shares.
    Voltage rises linearly from ``v_min_ratio * V_max`` at the lowest level to ``V_max`` at
    the highest (DVFS tables are roughly linear above the threshold voltage).

    Consequences (tested): latency never increases when a clock rises. Dynamic energy never
    decreases with a clock and static energy never increases, so energy has an interior
    optimum in general; with no static power, lower clocks always save energy; with no voltage
    scaling (``v_min_ratio = 1``) the fastest setting is the most frugal (race to idle).

    Assumptions: shares do not overlap (no compute/memory overlap: the model over-estimates
    the clock sensitivity of balanced workloads); caches and DRAM timings do not change with
    clocks; the reference measurement was taken at ``reference`` (default: every domain at
    its maximum, as ``jetson_clocks`` pins them). ``ridge_intensity``, ``static_power_fraction``,
    ``host_share`` and ``v_min_ratio`` are platform parameters: the config defaults are
    assumptions stated there; :func:`fit_dvfs_model` calibrates them from one workload
    measured at several settings.

    Args:
        space: the platform's frequency space.
        compute_domain: domain whose clock drives compute (``gpu`` or ``cpu``).
        memory_domain: domain whose clock drives memory traffic (``emc``), or None.
        host_domain: domain of host-side work, or None.
        host_share: fraction h of the reference latency that is host-side work.
        ridge_intensity: device ridge point in FLOP/byte at the reference clocks.
        static_power_fraction: static share of the reference power, in [0, 1).
        v_min_ratio: V at the lowest level over V at the highest, in (0, 1].
        reference: the setting of base measurements; None = every domain at its maximum.
    """

    def __init__(
        self,
        space: DvfsSpace,
        compute_domain: str = "gpu",
        memory_domain: str | None = "emc",
        host_domain: str | None = None,
        host_share: float = 0.0,
        ridge_intensity: float = 10.0,
        static_power_fraction: float = 0.3,
        v_min_ratio: float = 0.6,
        reference: Mapping[str, float] | None = None,
    ) -> None:
        for dom in (compute_domain, memory_domain, host_domain):
            if dom is not None:
                space.levels(dom)  # clear error for an unknown domain
        if not 0 <= host_share < 1 or (host_share > 0 and host_domain is None):
            raise ValueError(f"host_share must be in [0, 1) with a host_domain, got {host_share}")
        if not 0 <= static_power_fraction < 1:
            raise ValueError(
                f"static_power_fraction must be in [0, 1), got {static_power_fraction}"
            )
        if not 0 < v_min_ratio <= 1:
            raise ValueError(f"v_min_ratio must be in (0, 1], got {v_min_ratio}")
        if ridge_intensity <= 0:
            raise ValueError(f"ridge_intensity must be > 0, got {ridge_intensity}")
        self.space = space
        self.compute_domain, self.memory_domain, self.host_domain = (
            compute_domain,
            memory_domain,
            host_domain,
        )
        self.host_share = host_share
        self.ridge_intensity = ridge_intensity
        self.static_power_fraction = static_power_fraction
        self.v_min_ratio = v_min_ratio
        self.reference = space.validate(reference or space.max_setting())

    def compute_share(self, intensity: float) -> float:
        """Compute-bound share ``I / (I + I_r)`` of accelerator time (1 with no memory domain)."""
        if self.memory_domain is None:
            return 1.0
        if intensity < 0:
            raise ValueError(f"arithmetic intensity must be >= 0, got {intensity}")
        return float(intensity / (intensity + self.ridge_intensity))

    def shares(self, intensity: float) -> dict[str, float]:
        """Latency share of every driving domain at the reference setting."""
        s_c = self.compute_share(intensity)
        out: dict[str, float] = {}
        if self.host_domain is not None:
            out[self.host_domain] = out.get(self.host_domain, 0.0) + self.host_share
        rest = 1.0 - self.host_share
        out[self.compute_domain] = out.get(self.compute_domain, 0.0) + rest * s_c
        if self.memory_domain is not None:
            out[self.memory_domain] = out.get(self.memory_domain, 0.0) + rest * (1 - s_c)
        return out

    def voltage(self, domain: str, mhz: float) -> float:
        """Relative voltage V(f)/V_max of a domain (linear between the lowest and top level)."""
        levels = self.space.levels(domain)
        lo, hi = float(levels[0]), float(levels[-1])
        t = 1.0 if hi == lo else (mhz - lo) / (hi - lo)
        return self.v_min_ratio + (1 - self.v_min_ratio) * t

    def predict(
        self,
        base_latency_ms: float,
        base_energy_mj: float | None,
        setting: Mapping[str, float],
        intensity: float,
    ) -> dict[str, Any]:
        """``latency_ms``, ``energy_mj`` and ``power_w`` at ``setting`` (energy None if unknown).

        Args:
            base_latency_ms: latency at the reference setting.
            base_energy_mj: energy at the reference setting, or None.
            setting: a (partial) setting; domains left out stay at the reference.
            intensity: the workload's arithmetic intensity in FLOP/byte.
        """
        f = {**self.reference, **self.space.validate(setting)}
        shares = self.shares(intensity)
        scale = sum(sh * self.reference[d] / f[d] for d, sh in shares.items())
        latency = base_latency_ms * scale
        out: dict[str, Any] = {"latency_ms": latency}
        if base_energy_mj is None:
            out.update(energy_unavailable("no base energy to scale"))
            return out
        p_static_w = self.static_power_fraction * base_energy_mj / base_latency_ms
        dynamic0 = base_energy_mj - p_static_w * base_latency_ms
        energy = p_static_w * latency
        for d, sh in shares.items():
            ratio = self.voltage(d, f[d]) / self.voltage(d, self.reference[d])
            energy += dynamic0 * sh * ratio**2
        out.update(energy_mj=energy, power_w=energy / latency)
        return out


def fit_dvfs_model(
    space: DvfsSpace,
    settings: Sequence[Mapping[str, float]],
    latency_ms: Sequence[float],
    energy_mj: Sequence[float] | None,
    intensity: float,
    compute_domain: str = "gpu",
    memory_domain: str | None = "emc",
    host_domain: str | None = None,
    reference: Mapping[str, float] | None = None,
) -> tuple[DvfsModel, dict[str, float]]:
    """Calibrate a :class:`DvfsModel` from one workload measured at several settings.

    Replaces the configs' assumed parameters with fitted ones. The latency model is linear in
    the per-domain times at the reference, ``L(f) = sum_d a_d r_d / f_d`` with ``a_d >= 0``,
    solved by non-negative least squares; they give ``host_share``, the compute share and from
    it ``ridge_intensity = I (1 - s_c) / s_c``. Given those shares, energy is linear in the
    static power and the reference dynamic energy for a fixed ``v_min_ratio``, solved by NNLS
    inside a bounded scalar search over ``v_min_ratio``.

    Args:
        space: the platform's frequency space.
        settings: the measured settings (partial settings keep reference levels).
        latency_ms: measured latency at each setting.
        energy_mj: measured energy at each setting, or None to fit latency only (the energy
            parameters then keep DvfsModel's defaults).
        intensity: the workload's arithmetic intensity (FLOP/byte, :func:`workload_profile`).
        compute_domain, memory_domain, host_domain: distinct driving domains.
        reference: the reference setting; None = every domain at its maximum.

    Returns:
        The fitted model and a report (fitted parameters, reference latency / energy, and the
        relative RMS residuals of latency and energy).
    """
    from scipy.optimize import minimize_scalar, nnls

    domains = [d for d in (host_domain, compute_domain, memory_domain) if d is not None]
    if len(set(domains)) != len(domains):
        raise ValueError(f"driving domains must be distinct, got {domains}")
    ref = space.validate(reference or space.max_setting())
    full = [{**ref, **space.validate(st)} for st in settings]
    lat = np.asarray(latency_ms, float)
    if len(full) != len(lat) or len(lat) < len(domains) + 1:
        raise ValueError(
            f"need one latency per setting and more settings than domains ({len(domains)}), "
            f"got {len(full)} settings and {len(lat)} latencies"
        )
    A = np.array([[ref[d] / f[d] for d in domains] for f in full])
    a, _ = nnls(A, lat)
    base_latency = float(a.sum())
    parts = dict(zip(domains, a, strict=True))
    host_share = parts.get(host_domain, 0.0) / base_latency if host_domain else 0.0
    accel = parts[compute_domain] + (parts[memory_domain] if memory_domain else 0.0)
    s_c = parts[compute_domain] / accel if accel > 0 else 1.0
    if memory_domain is None:
        ridge = 10.0  # unused without a memory domain
    elif not 0 < s_c < 1:
        raise ValueError(
            f"the fit puts {s_c:.0%} of accelerator time on {compute_domain!r}: the settings do "
            "not separate compute from memory time (vary both clocks)"
        )
    else:
        ridge = float(intensity * (1 - s_c) / s_c)
    kwargs = dict(
        compute_domain=compute_domain,
        memory_domain=memory_domain,
        host_domain=host_domain,
        host_share=host_share,
        ridge_intensity=ridge,
        reference=ref,
    )
    model = DvfsModel(space, **kwargs)
    pred_lat = np.array(
        [model.predict(base_latency, None, f, intensity)["latency_ms"] for f in full]
    )
    report = {
        "base_latency_ms": base_latency,
        "host_share": host_share,
        "compute_share": s_c,
        "ridge_intensity": ridge,
        "latency_rel_rms": float(np.sqrt(np.mean((pred_lat / lat - 1) ** 2))),
    }
    if energy_mj is None:
        return model, report
    energy = np.asarray(energy_mj, float)
    shares = model.shares(intensity)

    def solve(v_min: float) -> tuple[float, np.ndarray]:
        probe = DvfsModel(space, **kwargs, v_min_ratio=v_min)
        dyn = [
            sum(
                sh * (probe.voltage(d, f[d]) / probe.voltage(d, ref[d])) ** 2
                for d, sh in shares.items()
            )
            for f in full
        ]
        coef, resid = nnls(np.c_[lat, dyn], energy)  # [static power W, reference dynamic mJ]
        return resid, coef

    best = minimize_scalar(lambda v: solve(v)[0], bounds=(0.05, 1.0), method="bounded")
    v_min = float(best.x)
    p_static, dyn0 = solve(v_min)[1]
    base_energy = p_static * base_latency + dyn0
    fraction = float(np.clip(p_static * base_latency / base_energy, 0.0, 0.999))
    model = DvfsModel(space, **kwargs, v_min_ratio=v_min, static_power_fraction=fraction)
    pred_e = np.array(
        [model.predict(base_latency, base_energy, f, intensity)["energy_mj"] for f in full]
    )
    report.update(
        base_energy_mj=float(base_energy),
        static_power_fraction=fraction,
        v_min_ratio=v_min,
        energy_rel_rms=float(np.sqrt(np.mean((pred_e / energy - 1) ** 2))),
    )
    return model, report


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

    def arch_intensity(self, arch: str, model: nn.Module | None = None) -> float:
        if self.intensity is not None:
            return self.intensity
        if arch not in self._intensity_cache or model is not None:
            net = resolve_model(arch, model, self.space, self.name)
            x = torch.zeros(1, self.in_channels, self.resolution, self.resolution)
            self._intensity_cache[arch] = workload_profile(net, x)["intensity"]
        return self._intensity_cache[arch]

    def metrics(
        self,
        arch: str,
        model: nn.Module | None = None,
        setting: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Base metrics rescaled to ``setting`` (default: the device's own setting)."""
        base = self.base.metrics(arch, model)
        setting = self.setting if setting is None else self.model.space.validate(setting)
        full = {**self.model.reference, **setting}
        out: dict[str, Any] = {"arch": arch}
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


# ------------------------------------------------------------------------------ backends


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
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError:
                raise DvfsUnavailable(
                    "pynvml is not installed: pip install 'hwnas[gpu]' (nvidia-ml-py)"
                ) from None
        self.nvml, self.mode = nvml, mode
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise DvfsUnavailable(f"NVML could not start: {err}") from None
        from hardware.energy import nvml_handle

        self.handle = nvml_handle(nvml, cuda_index)

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
