"""The DVFS latency / energy model: (workload, frequency setting) -> latency and energy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hardware.base import energy_unavailable
from hardware.dvfs.space import DvfsSpace


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
