"""Calibrating a DVFS model from one workload measured at several frequency settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hardware.dvfs.model import DvfsModel
from hardware.dvfs.space import DvfsSpace


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
